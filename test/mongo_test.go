package test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// A test that needs documents the server does not write (users, a
// notification) runs its own FerretDB, points the server at it with
// MONGODB_URI, and writes those documents with the Go driver, as the main
// backend writes users in production.

// startFerret runs a FerretDB over SQLite files in t.TempDir(), in this test
// process, and returns its MongoDB URI (ending in "/").
func startFerret(t testing.TB) string {
	t.Helper()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + t.TempDir() + "/",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return f.MongoDBURI()
}

// mongoDB connects to database db at uri and returns it; it disconnects at cleanup.
func mongoDB(t testing.TB, uri, db string) *mongo.Database {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c.Database(db)
}

// withMongo starts a FerretDB and a server on it (database "fitmate"), and
// returns the server and a handle on its database.
func withMongo(t testing.TB, extra ...string) (*server, *mongo.Database) {
	t.Helper()
	uri := startFerret(t)
	srv := startServer(t, append([]string{"MONGODB_URI=" + uri + "fitmate"}, extra...)...)
	return srv, mongoDB(t, uri, "fitmate")
}

func oid(t testing.TB, hex string) bson.ObjectID {
	t.Helper()
	id, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// insertUser writes a users document as the main backend (Spring) would: _id an ObjectId.
func insertUser(t testing.TB, db *mongo.Database, id string, fields bson.M) {
	t.Helper()
	doc := bson.M{"_id": oid(t, id)}
	for k, v := range fields {
		doc[k] = v
	}
	if _, err := db.Collection("users").InsertOne(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
}

// tcpProxy forwards TCP connections to an upstream address. Cut closes its
// listener and every connection, as a database that went away; Restore
// listens again on the same address.
type tcpProxy struct {
	t        testing.TB
	addr     string
	upstream string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(t testing.TB, upstream string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.listen("127.0.0.1:0")
	t.Cleanup(func() {
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// proxyFor returns a proxy in front of the host of a mongodb:// URI, and the URI through the proxy.
func proxyFor(t testing.TB, uri string) (*tcpProxy, string) {
	t.Helper()
	host := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	p := newProxy(t, host)
	return p, "mongodb://" + p.addr + "/"
}

func (p *tcpProxy) listen(addr string) {
	p.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger for a moment after a Cut
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go p.accept(ln)
}

func (p *tcpProxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // cut meanwhile
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut closes the listener and every open connection.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Restore listens again on the proxy's address.
func (p *tcpProxy) Restore() {
	p.t.Helper()
	p.mu.Lock()
	if p.ln != nil {
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.listen(p.addr)
}

// findAll reads every document of a collection matching filter.
func findAll(t testing.TB, db *mongo.Database, col string, filter any) []bson.M {
	t.Helper()
	cur, err := db.Collection(col).Find(context.Background(), filter)
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.M
	if err := cur.All(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

var errNotYet = errors.New("not yet")
