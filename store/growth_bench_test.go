package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/presence/presencetest"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// BenchmarkEmbeddedGrowth measures the embedded store as it grows (issue 8):
// it seeds GROWTH_MESSAGES messages (100,000) across GROWTH_ROOMS rooms
// (1,000) and GROWTH_NOTIFICATIONS notifications (100,000, half unread,
// across as many users as rooms), with insertMany into the embedded store's
// files, opens the store over them (its first start builds its index), and
// times GROWTH_SAMPLES (300) calls of each operation issue 8 sets a target
// for, through the chat and notification services as the gateway calls them:
// joinChat's history (Join: newest 50, senders populated), a retried
// clientMessageId (Send with the id of a stored message) and an unread count
// (UnreadCount). Then one call each of reads beyond the index, and a clean
// restart. make bench runs it:
//
//	go test ./store/ -run '^$' -bench EmbeddedGrowth -benchtime 1x
func BenchmarkEmbeddedGrowth(b *testing.B) {
	messages, rooms := envInt("GROWTH_MESSAGES", 100_000), envInt("GROWTH_ROOMS", 1_000)
	notifications, samples := envInt("GROWTH_NOTIFICATIONS", 100_000), envInt("GROWTH_SAMPLES", 300)
	users := rooms // as many users as rooms; each room has two members
	dir := b.TempDir()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	start := time.Now()
	if err := seedGrowth(ctx, dir, messages, rooms, notifications, users, log); err != nil {
		b.Fatal(err)
	}
	seeded := time.Since(start)

	// A long store timeout: the reads beyond the index below take longer
	// than the default STORE_TIMEOUT (5 s) at these volumes, and their time
	// is what is measured.
	const timeout = time.Minute
	start = time.Now()
	d, err := Open(ctx, Options{DataDir: dir, Timeout: timeout}, log)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { d.Close(ctx) }() // the one open at the end
	opened := time.Since(start)

	chatSvc := chat.NewService(d, discardPublisher{}, presencetest.NewOnline(), nil, nil,
		chat.Options{MaxMessageLength: 4000, MaxRoomIDLength: 64, StoreTimeout: timeout}, log)
	notifySvc := notify.New(d, discardPublisher{}, presencetest.NewOnline(), nil, notify.Options{}, log)
	rng := rand.New(rand.NewPCG(7, 11))

	b.ResetTimer()
	history := timeIt(samples, func() error {
		r := rng.IntN(rooms)
		msgs, err := chatSvc.Join(ctx, chat.Identity{UserID: growthUser(r)}, growthRoom(r), "", nil)
		if err == nil && len(msgs) != min(chat.HistoryLimit, messages/rooms) {
			err = fmt.Errorf("history of %d messages", len(msgs))
		}
		return err
	})
	retry := timeIt(samples, func() error {
		n := rng.IntN(messages)
		r := n % rooms
		in := chat.SendInput{ChatRoomID: growthRoom(r), Text: "again", ClientMessageID: "c-" + strconv.Itoa(n)}
		ch := make(chan error, 1)
		chatSvc.Send(ctx, chat.Identity{UserID: growthUser(r)}, in, func(m chat.Message, err error) {
			if err == nil && m.Text == "again" {
				err = fmt.Errorf("the retry stored a new message")
			}
			ch <- err
		})
		return <-ch
	})
	unread := timeIt(samples, func() error {
		_, err := notifySvc.UnreadCount(ctx, growthUser(rng.IntN(users)))
		return err
	})
	b.StopTimer()

	// Beyond the index: reads of messages older than a room's newest
	// tailSize (a room of bigRoom messages), and a notification list, read
	// the documents. One of each.
	big := chat.Identity{UserID: growthUser(0)}
	page2, err := chatSvc.History(ctx, big, growthRoom(-1), 2, 50) // messages 51-100: the index's oldest
	if err != nil {
		b.Fatal(err)
	}
	oldest := page2.Messages[0].ID
	beyond := []struct {
		name string
		op   func() error
	}{
		{"REST page 6 of 50 (messages 251-300)", func() error { _, err := chatSvc.History(ctx, big, growthRoom(-1), 6, 50); return err }},
		{"REST before a message 100 back", func() error { _, err := chatSvc.HistoryBefore(ctx, big, growthRoom(-1), oldest, 50); return err }},
		{"joinChat since a message 300 back", func() error { _, err := chatSvc.Join(ctx, big, growthRoom(-1), firstBigID, nil); return err }},
		{"GET /notifications (page 1)", func() error { _, err := notifySvc.List(ctx, growthUser(1), 1, 20); return err }},
	}
	var beyondTook []time.Duration
	for _, op := range beyond {
		start := time.Now()
		if err := op.op(); err != nil {
			b.Fatalf("%s: %v", op.name, err)
		}
		beyondTook = append(beyondTook, time.Since(start))
	}
	start = time.Now()
	if err := d.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if d, err = Open(ctx, Options{DataDir: dir, Timeout: timeout}, log); err != nil {
		b.Fatal(err)
	}
	reopened := time.Since(start)

	for _, r := range []struct {
		name string
		lat  latencies
	}{{"history", history}, {"retry", retry}, {"unread", unread}} {
		if r.lat.err != nil {
			b.Fatalf("%s: %v", r.name, r.lat.err)
		}
		b.ReportMetric(float64(r.lat.p(50).Microseconds())/1000, r.name+"-p50-ms")
		b.ReportMetric(float64(r.lat.p(99).Microseconds())/1000, r.name+"-p99-ms")
	}
	fmt.Fprintf(os.Stderr, "embedded store: %d messages in %d rooms (and %d in one more), %d notifications\n",
		messages, rooms, bigRoom, notifications)
	fmt.Fprintf(os.Stderr, "seeded with insertMany in %v; first start (builds the index) %v; clean restart %v\n",
		seeded.Round(time.Millisecond), opened.Round(time.Millisecond), reopened.Round(time.Millisecond))
	fmt.Fprintf(os.Stderr, "%-28s %10s %10s %10s\n", "operation ("+strconv.Itoa(samples)+" each)", "p50", "p99", "max")
	for _, r := range []struct {
		name string
		lat  latencies
	}{{"joinChat history (50)", history}, {"retried clientMessageId", retry}, {"unread count", unread}} {
		fmt.Fprintf(os.Stderr, "%-28s %10v %10v %10v\n", r.name, r.lat.p(50).Round(10*time.Microsecond),
			r.lat.p(99).Round(10*time.Microsecond), r.lat.p(100).Round(10*time.Microsecond))
	}
	fmt.Fprintf(os.Stderr, "beyond the index (one each):\n")
	for i, op := range beyond {
		fmt.Fprintf(os.Stderr, "  %-40s %v\n", op.name, beyondTook[i].Round(time.Millisecond))
	}
}

// bigRoom is how many messages room-(-1) holds: past the index's copies.
const bigRoom = 500

// The first message of the big room, set by seedGrowth.
var firstBigID string

func growthRoom(r int) string { return "room-" + strconv.Itoa(r) }

// growthUser is the member who sends in room r (and owns notifications of user r).
func growthUser(r int) string { return fmt.Sprintf("%024x", 0x65f00000_00000000+r) }

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// seedGrowth writes the documents with insertMany, as Mongoose-shaped as
// the server writes them, straight into the embedded store's files.
func seedGrowth(ctx context.Context, dir string, messages, rooms, notifications, users int, log *slog.Logger) error {
	e, err := StartEmbedded(dir, "127.0.0.1:0", log)
	if err != nil {
		return err
	}
	defer e.Close()
	client, err := mongo.Connect(options.Client().ApplyURI(e.URI))
	if err != nil {
		return err
	}
	defer client.Disconnect(ctx)
	db := client.Database("fitmate")
	insert := func(col string, docs []any) error {
		_, err := db.Collection(col).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
		return err
	}
	base := time.Now().UTC().Add(-time.Duration(messages) * time.Second).Truncate(time.Millisecond)
	var batch []any
	flush := func(col string, force bool) error {
		if len(batch) == 0 || (!force && len(batch) < 1000) {
			return nil
		}
		err := insert(col, batch)
		batch = batch[:0]
		return err
	}
	for u := range users {
		batch = append(batch, bson.M{"_id": idValue(growthUser(u)), "name": "user " + strconv.Itoa(u),
			"email": strconv.Itoa(u) + "@example.com", "picture": "https://example.com/" + strconv.Itoa(u)})
		if err := flush(colUsers, false); err != nil {
			return err
		}
	}
	if err := flush(colUsers, true); err != nil {
		return err
	}
	for r := -1; r < rooms; r++ {
		batch = append(batch, roomDoc{ID: growthRoom(r), Members: idValues([]string{growthUser(r), growthUser((r + 1) % users)}),
			CreatedAt: base, UpdatedAt: base})
		if err := flush(colRooms, false); err != nil {
			return err
		}
	}
	if err := flush(colRooms, true); err != nil {
		return err
	}
	for n := range messages {
		r := n % rooms
		at := base.Add(time.Duration(n) * time.Second)
		m := newMessageDoc(chat.Message{ChatRoomID: growthRoom(r), SenderID: growthUser(r),
			Text: "message " + strconv.Itoa(n) + " of the growth benchmark, about as long as a chat line", Type: chat.TypeText,
			Timestamp: at, ReadBy: []string{}, ClientMessageID: "c-" + strconv.Itoa(n), CreatedAt: at, UpdatedAt: at})
		batch = append(batch, m)
		if err := flush(colMessages, false); err != nil {
			return err
		}
	}
	for n := range bigRoom {
		at := base.Add(time.Duration(n) * time.Second)
		m := newMessageDoc(chat.Message{ChatRoomID: growthRoom(-1), SenderID: growthUser(0),
			Text: "message " + strconv.Itoa(n) + " of the big room", Type: chat.TypeText,
			Timestamp: at, ReadBy: []string{}, CreatedAt: at, UpdatedAt: at})
		if n == 0 {
			firstBigID = m.ID.Hex()
		}
		batch = append(batch, m)
		if err := flush(colMessages, false); err != nil {
			return err
		}
	}
	if err := flush(colMessages, true); err != nil {
		return err
	}
	for n := range notifications {
		at := base.Add(time.Duration(n) * time.Second)
		doc := newNotificationDoc(notify.Notification{UserID: growthUser(n % users), Title: "운동 완료! 🎉",
			Message: "스쿼트 운동을 완료했습니다.", Type: notify.TypeWorkoutCompleted, Priority: notify.PriorityNormal,
			IsRead: n%2 == 0, CreatedAt: at, UpdatedAt: at})
		batch = append(batch, doc)
		if err := flush(colNotifications, false); err != nil {
			return err
		}
	}
	return flush(colNotifications, true)
}

type latencies struct {
	d   []time.Duration
	err error
}

func (l latencies) p(q int) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	return l.d[min(len(l.d)-1, len(l.d)*q/100)]
}

func timeIt(n int, op func() error) latencies {
	var l latencies
	for range n {
		start := time.Now()
		if err := op(); err != nil {
			l.err = err
			return l
		}
		l.d = append(l.d, time.Since(start))
	}
	slices.Sort(l.d)
	return l
}

type discardPublisher struct{}

func (discardPublisher) PublishRoom(context.Context, string, bool, string, any) error { return nil }
func (discardPublisher) EvictFromRoom(context.Context, string, []string) error        { return nil }
func (discardPublisher) PublishUser(context.Context, string, string, any) error       { return nil }
