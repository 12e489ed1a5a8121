package chat_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fitmate/commserver/chat"
)

// gatedPublisher records publications; the first one waits for open.
type gatedPublisher struct {
	published
	open  chan struct{}
	first sync.Once
}

func (g *gatedPublisher) PublishRoom(ctx context.Context, room string, admins bool, event string, payload any) error {
	g.first.Do(func() { <-g.open })
	return g.published.PublishRoom(ctx, room, admins, event, payload)
}

// A slow fan-out never delays the next insert: while the first message's
// publication hangs, the next ones are stored; once it goes on, the room
// hears every message, and the senders their answers, in the order of
// acknowledgement.
func TestSlowFanOutDoesNotDelayInserts(t *testing.T) {
	pub := &gatedPublisher{open: make(chan struct{})}
	s, db := newServiceWith(t, chat.Options{}, 5*time.Second, pub)
	ctx := context.Background()
	if _, err := s.PutRoom(ctx, "room-1", []string{alice, bob}); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var mu sync.Mutex
	var answered []string
	for i := range n {
		s.Send(ctx, chat.Identity{UserID: alice}, chat.SendInput{ChatRoomID: "room-1", Text: fmt.Sprintf("m%d", i)},
			func(m chat.Message, err error) {
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				answered = append(answered, m.Text)
				mu.Unlock()
			})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs, err := db.RecentMessages(ctx, "room-1", 50)
		if err == nil && len(msgs) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages stored while the first publication hangs (%v)", len(msgs), n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(pub.open)
	for time.Now().Before(deadline) {
		mu.Lock()
		done := len(answered) == n
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ev := pub.take()
	if len(ev) != n || len(answered) != n {
		t.Fatalf("%d publications and %d answers, want %d", len(ev), len(answered), n)
	}
	for i := range n {
		want := fmt.Sprintf("m%d", i)
		if got := ev[i].payload.(chat.Message).Text; got != want || answered[i] != want {
			t.Fatalf("publication %d is %q and answer %d is %q, want %q", i, got, i, answered[i], want)
		}
	}
}

// A message stored by an instance that died before publishing it (here: put
// in the store directly, as the dead instance did) is published by Run's
// sweep, once.
func TestSweepPublishesWhatNoLivePathDid(t *testing.T) {
	pub := &published{}
	s, db := newServiceWith(t, chat.Options{}, 300*time.Millisecond, pub)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := s.PutRoom(ctx, "room-1", []string{alice, bob}); err != nil {
		t.Fatal(err)
	}
	stored := make(chan chat.Message, 1)
	now := time.Now().UTC().Truncate(time.Millisecond)
	db.InsertMessage(ctx, chat.Message{ChatRoomID: "room-1", SenderID: alice, Text: "orphan", Type: chat.TypeText,
		Timestamp: now, ReadBy: []string{}, CreatedAt: now, UpdatedAt: now}, func(m chat.Message, _ bool, err error) {
		if err != nil {
			t.Error(err)
		}
		stored <- m
	})
	orphan := <-stored
	var run sync.WaitGroup
	run.Add(1)
	go func() { defer run.Done(); s.Run(ctx) }()
	defer func() { cancel(); run.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	var ev []publishedEvent
	for len(ev) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		ev = pub.take()
	}
	if len(ev) != 1 || ev[0].event != chat.EventNewMessage || ev[0].payload.(chat.Message).ID != orphan.ID {
		t.Fatalf("published %+v, want the orphan once", ev)
	}
	time.Sleep(3 * time.Second) // a sweep or more later
	if again := pub.take(); len(again) != 0 {
		t.Fatalf("published again: %+v", again)
	}
}

// failOnce is a publisher whose first publication fails (a cluster adapter
// that could not reach the others).
type failOnce struct {
	published
	failed sync.Once
}

func (f *failOnce) PublishRoom(ctx context.Context, room string, admins bool, event string, payload any) error {
	err := error(nil)
	f.failed.Do(func() { err = fmt.Errorf("adapter unreachable") })
	if err != nil {
		return err
	}
	return f.published.PublishRoom(ctx, room, admins, event, payload)
}

// A publication that fails leaves the message's outbox entry: the sweep
// publishes it again.
func TestFailedPublicationIsRetriedBySweep(t *testing.T) {
	pub := &failOnce{}
	s, _ := newServiceWith(t, chat.Options{}, 300*time.Millisecond, pub)
	ctx, cancel := context.WithCancel(context.Background())
	var run sync.WaitGroup
	run.Add(1)
	go func() { defer run.Done(); s.Run(ctx) }()
	defer func() { cancel(); run.Wait() }()
	if _, err := s.PutRoom(ctx, "room-1", []string{alice, bob}); err != nil {
		t.Fatal(err)
	}
	m, err := send(ctx, s, chat.Identity{UserID: alice}, chat.SendInput{ChatRoomID: "room-1", Text: "retried"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	var ev []publishedEvent
	for len(ev) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		ev = pub.take()
	}
	if len(ev) != 1 || ev[0].payload.(chat.Message).ID != m.ID {
		t.Fatalf("published %+v, want the message once, by the sweep", ev)
	}
}
