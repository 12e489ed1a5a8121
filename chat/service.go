package chat

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	commserver "github.com/fitmate/commserver"
)

// Store persists chat data. Every method returns commserver errors:
// ErrStorageUnavailable when the store did not answer in time, ErrNotFound
// for a missing room or message, ErrInvalid for an id of the wrong shape.
type Store interface {
	// InsertMessage stores m, which has no ID yet, and calls done once with
	// the outcome when the database has acknowledged it, or with
	// ErrStorageUnavailable when it did not within the store's timeout (or
	// ctx's deadline) counted from this call. When m carries a
	// ClientMessageID already used by the same sender in the same room, it
	// stores nothing and passes the original message with created false.
	// Writes are batched: done runs on the store's writer goroutine, in the
	// order the inserts were made (or on a timer, at the deadline), and must
	// not block. A message stored although done reported
	// ErrStorageUnavailable is handed out by ClaimUnpublished.
	InsertMessage(ctx context.Context, m Message, done func(stored Message, created bool, err error))
	// ClaimUnpublished claims up to limit stored messages that were never
	// published (their pod died between write and broadcast, or the store
	// acknowledged them after their sender's deadline), oldest first. Any
	// instance may claim them; a claim lapses if MessagesPublished does not
	// follow in time, so a claimer that dies hands them on.
	ClaimUnpublished(ctx context.Context, limit int) ([]Message, error)
	// MessagesPublished records that the messages were published, so that no
	// sweeper publishes them again. It does not block.
	MessagesPublished(ids ...string)
	// RecentMessages returns the room's newest messages, newest first, senders populated.
	RecentMessages(ctx context.Context, roomID string, limit int) ([]Message, error)
	// MessagesPage returns page (1-based) of the room's history counted from the
	// newest, oldest first within the page, and the room's message count.
	MessagesPage(ctx context.Context, roomID string, page, limit int) ([]Message, int64, error)
	// MessagesBefore returns up to limit messages older than the message
	// beforeID (oldest first) and whether older ones remain.
	MessagesBefore(ctx context.Context, roomID, beforeID string, limit int) ([]Message, bool, error)
	// MessagesAfter returns up to limit messages newer than afterID, oldest first.
	MessagesAfter(ctx context.Context, roomID, afterID string, limit int) ([]Message, error)
	// Message returns one message.
	Message(ctx context.Context, id string) (Message, error)
	// SoftDeleteMessage marks the message deleted and returns it.
	SoftDeleteMessage(ctx context.Context, id string) (Message, error)
	// MarkRoomRead adds userID to readBy of the room's messages sent by others; it returns how many changed.
	MarkRoomRead(ctx context.Context, roomID, userID string) (int64, error)
	// ChatUsers lists the users who sent messages, most recent first.
	ChatUsers(ctx context.Context) ([]ChatUser, error)
	// Room returns a room and its members.
	Room(ctx context.Context, roomID string) (Room, error)
	// PutRoom creates the room or replaces its members; it returns the room and the members it had before.
	PutRoom(ctx context.Context, roomID string, members []string) (room Room, previous []string, err error)
	// RoomsOfUsers lists, for each user, the ids of up to limit rooms whose
	// members include the user, in one query; users in no room are absent.
	RoomsOfUsers(ctx context.Context, userIDs []string, limit int) (map[string][]string, error)
	// UserIsAdmin reports whether the user's document in users has role admin (false when there is none).
	UserIsAdmin(ctx context.Context, userID string) (bool, error)
}

// Publisher delivers events to sockets, on every instance.
type Publisher interface {
	// PublishRoom emits event to every socket in the chat room and, when
	// alsoAdmins, in AdminRoom: each socket once.
	PublishRoom(ctx context.Context, chatRoomID string, alsoAdmins bool, event string, payload any) error
	// EvictFromRoom makes every socket of these users leave the chat room.
	EvictFromRoom(ctx context.Context, chatRoomID string, userIDs []string) error
}

// BatchPublisher is a Publisher that can hold the writes of many
// publications until they are all queued, so that each connection gets
// them in one write (the hub). Optional.
type BatchPublisher interface {
	Batch(fn func())
}

// OnlineChecker tells which users have at least one socket anywhere.
type OnlineChecker interface {
	Online(ctx context.Context, userIDs []string) (map[string]bool, error)
}

// Notifier tells members who were offline that a message arrived (package notify).
type Notifier interface {
	ChatMessage(ctx context.Context, m Message, recipients []string) error
}

// Options are the rules the service enforces.
type Options struct {
	OpenRooms        bool // CHAT_ROOM_POLICY=open: any user may join any room (the seed's behaviour)
	MaxMessageLength int  // characters
	MaxRoomIDLength  int
	MembershipTTL    time.Duration // how long a room's member list is cached; 0 means 5s
	// StoreTimeout bounds a send from its start to its answer (STORE_TIMEOUT):
	// a sender hears within it, whatever queued ahead of the message. 0: the store's own deadlines only.
	StoreTimeout time.Duration
}

// Service is the chat domain's operations.
type Service struct {
	store    Store
	pub      Publisher
	online   OnlineChecker
	notifier Notifier    // may be nil
	inval    Invalidator // may be nil: one instance
	opts     Options
	log      *slog.Logger

	rooms  *lru[cachedRoom] // room id → members, for MembershipTTL
	admins *lru[bool]       // user id → admin by the users document, for adminCacheTTL

	offline chan offlineJob
	wg      sync.WaitGroup

	// Stored messages are published in the order the store acknowledged
	// them, by one goroutine at a time that drains pubQueue: never on the
	// store's writer goroutine, so a slow fan-out cannot delay the next insert.
	pubMu      sync.Mutex
	pubQueue   []pubItem
	pubRunning bool
	pubIdle    sync.WaitGroup      // the draining goroutine
	inflight   map[string]struct{} // stored by the live path, not yet published
	slots      chan struct{}       // sends between submission and publication (memory bound)
}

// pubItem is a store outcome waiting for its turn: a message to publish
// (and its sender to answer), a retry's original, or an error.
type pubItem struct {
	msg     Message
	created bool
	err     error
	members []string             // who hears of it while offline
	done    func(Message, error) // the sender's answer; nil for swept messages
	swept   bool                 // from ClaimUnpublished, not from a sender
}

type cachedRoom struct {
	room    Room
	missing bool
}

type offlineJob struct {
	msg     Message
	members []string
}

// Limits that are not configuration.
const (
	maxClientMessageID = 64
	maxMetadataBytes   = 4096
	maxPageLimit       = 100
	adminCacheTTL      = time.Minute
	maxRoomsOf         = 200
	maxRoomsOfBatch    = 500 // users per rooms-of query
	roomsOfTimeout     = 10 * time.Second
	maxPendingSends    = 8192 // sends stored or being stored, not yet published
	sweepInterval      = 2 * time.Second
	sweepBatch         = 100
)

// NewService returns the chat service. notifier may be nil (no offline
// notifications); inval may be nil (one instance: nobody else caches).
// Call Run to start its background work.
//
// Room members and admin status are cached, bounded (LRU), for
// MembershipTTL and a minute. A member change made here is announced through
// inval so other instances drop theirs at once. Admin status has no change
// event (the main backend writes users without telling us), so a demoted
// admin keeps admin rights for at most a minute on each instance.
func NewService(store Store, pub Publisher, online OnlineChecker, notifier Notifier, inval Invalidator, opts Options, log *slog.Logger) *Service {
	if opts.MembershipTTL == 0 {
		opts.MembershipTTL = 5 * time.Second
	}
	return &Service{store: store, pub: pub, online: online, notifier: notifier, inval: inval, opts: opts, log: log,
		rooms:   newLRU(opts.MembershipTTL, maxCachedRooms, maxCachedRoomMembers, func(c cachedRoom) int { return 1 + len(c.room.Members) }),
		admins:  newLRU[bool](adminCacheTTL, maxCachedAdmins, maxCachedAdmins, nil),
		offline: make(chan offlineJob, 1024), inflight: map[string]struct{}{}, slots: make(chan struct{}, maxPendingSends)}
}

// Run publishes stored messages that their live path could not (the
// outbox sweep: at start and every sweepInterval) and works through offline
// notifications until ctx is done, then finishes what is queued.
func (s *Service) Run(ctx context.Context) {
	var sweeper sync.WaitGroup
	sweeper.Add(1)
	go func() { defer sweeper.Done(); s.sweep(ctx) }()
	for {
		select {
		case j := <-s.offline:
			s.notifyOffline(j)
		case <-ctx.Done():
			sweeper.Wait()
			s.pubIdle.Wait() // its offline jobs are queued by now
			for {
				select {
				case j := <-s.offline:
					s.notifyOffline(j)
				default:
					s.wg.Wait()
					return
				}
			}
		}
	}
}

// idChars is what room ids and client message ids may hold: no "/", which
// the store uses to join them into one key.
var idChars = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// ValidateRoomID checks the shape of a room id.
func (s *Service) ValidateRoomID(id string) error {
	switch {
	case id == "":
		return commserver.Invalid("chatRoomId", "chatRoomId is required")
	case len(id) > s.opts.MaxRoomIDLength:
		return commserver.Invalid("chatRoomId", "chatRoomId is longer than %d characters", s.opts.MaxRoomIDLength)
	case !idChars.MatchString(id):
		return commserver.Invalid("chatRoomId", "chatRoomId may hold only letters, digits and _ . : -")
	}
	return nil
}

// ValidateMessageID checks that id looks like a MongoDB ObjectId.
func ValidateMessageID(field, id string) error {
	if !commserver.IsObjectID(id) {
		return commserver.Invalid(field, "%s must be a 24-character hexadecimal message id", field)
	}
	return nil
}

// Join authorizes id to join the room, calls enter (which subscribes the
// caller to the room's live messages) and then returns the room's history
// (newest first, at most HistoryLimit). Entering before reading means a
// message stored in between is delivered live rather than lost. With since
// set (a message id the client already has), it returns the messages after it
// instead, oldest first, so a reconnecting client misses nothing.
func (s *Service) Join(ctx context.Context, id Identity, roomID, since string, enter func()) ([]Message, error) {
	if err := s.ValidateRoomID(roomID); err != nil {
		return nil, err
	}
	if since != "" {
		if err := ValidateMessageID("since", since); err != nil {
			return nil, err
		}
	}
	if _, err := s.authorize(ctx, id, roomID); err != nil {
		return nil, err
	}
	if enter != nil {
		enter()
	}
	var msgs []Message
	var err error
	if since != "" {
		msgs, err = s.store.MessagesAfter(ctx, roomID, since, maxPageLimit)
	} else {
		msgs, err = s.store.RecentMessages(ctx, roomID, HistoryLimit)
	}
	return nonNil(msgs), err
}

// RoomsOfUsers lists, for each user, the ids of the rooms they belong to
// (at most maxRoomsOf each; users in no room are absent). It is asked for
// every presence change, so a reconnect storm's thousands of users are
// looked up a batch at a time (maxRoomsOfBatch users a query).
func (s *Service) RoomsOfUsers(ctx context.Context, userIDs []string) (map[string][]string, error) {
	out := make(map[string][]string, len(userIDs))
	for len(userIDs) > 0 {
		n := min(len(userIDs), maxRoomsOfBatch)
		cctx, cancel := context.WithTimeout(ctx, roomsOfTimeout)
		rooms, err := s.store.RoomsOfUsers(cctx, userIDs[:n], maxRoomsOf)
		cancel()
		if err != nil {
			return out, err
		}
		for u, r := range rooms {
			out[u] = r
		}
		userIDs = userIDs[n:]
	}
	return out, nil
}

// Send validates, authorizes and stores a message, then publishes it to the
// room and the admins, and calls done once with the stored message or the
// error. A message is published only once it is stored, and once stored it
// is published (if not by this call, by the outbox sweep of Run). A retry
// with the same ClientMessageID passes the original and publishes nothing.
//
// Send returns as soon as the message is queued for writing, so a client's
// next message can join the same batched write; done runs later, in the
// order the store acknowledged the messages, after the room was told, and
// within Options.StoreTimeout of this call. done must not block.
func (s *Service) Send(ctx context.Context, id Identity, in SendInput, done func(Message, error)) {
	if s.opts.StoreTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.StoreTimeout)
		answer := done
		done = func(m Message, err error) { answer(m, err); cancel() }
	}
	if err := s.validateSend(&in); err != nil {
		done(Message{}, err)
		return
	}
	if in.Type == TypeSystem && !s.isAdmin(ctx, id) {
		done(Message{}, commserver.Errorf(commserver.CodeForbidden, "only admins may post system messages"))
		return
	}
	room, err := s.authorize(ctx, id, in.ChatRoomID)
	if err != nil {
		done(Message{}, err)
		return
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		done(Message{}, &commserver.Error{Code: commserver.CodeUnavailable,
			Message: "the server has too many messages in flight; try again shortly", Err: ctx.Err()})
		return
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := Message{
		ChatRoomID: in.ChatRoomID, SenderID: id.UserID, Text: in.Text, Type: in.Type, Timestamp: now,
		ReadBy: []string{}, ReplyTo: in.ReplyTo, Metadata: in.Metadata, ClientMessageID: in.ClientMessageID,
		CreatedAt: now, UpdatedAt: now,
	}
	s.store.InsertMessage(ctx, m, func(stored Message, created bool, err error) {
		// On the store's writer goroutine: hand over, never publish here.
		s.enqueue(pubItem{msg: stored, created: created, err: err, members: room.Members, done: done})
	})
}

// enqueue appends it to the publication queue and makes sure a goroutine
// drains it. It never blocks.
func (s *Service) enqueue(it pubItem) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if it.err == nil && it.created && !it.swept {
		s.inflight[it.msg.ID] = struct{}{}
	}
	s.pubQueue = append(s.pubQueue, it)
	if !s.pubRunning {
		s.pubRunning = true
		s.pubIdle.Add(1)
		go s.drainPublications()
	}
}

// drainPublications publishes queued items in order until the queue is empty.
func (s *Service) drainPublications() {
	defer s.pubIdle.Done()
	bp, _ := s.pub.(BatchPublisher)
	for more := true; more; {
		run := func() {
			// At most pubBatch at a time: the writes wait no longer than that.
			for range pubBatch {
				it, ok := s.nextPublication()
				if !ok {
					more = false
					return
				}
				s.publish(it)
			}
		}
		if bp != nil {
			bp.Batch(run)
		} else {
			run()
		}
	}
}

// pubBatch is how many publications share their connections' writes.
const pubBatch = 64

// nextPublication takes the oldest queued publication; when there is none
// it marks the drain over.
func (s *Service) nextPublication() (pubItem, bool) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if len(s.pubQueue) == 0 {
		s.pubQueue, s.pubRunning = nil, false
		return pubItem{}, false
	}
	it := s.pubQueue[0]
	s.pubQueue[0] = pubItem{}
	s.pubQueue = s.pubQueue[1:]
	return it, true
}

// publish tells the room of a stored message (and queues its offline
// notifications), records that in the outbox, then answers the sender.
func (s *Service) publish(it pubItem) {
	if !it.swept {
		defer func() { <-s.slots }()
	}
	if it.err != nil {
		it.done(Message{}, it.err)
		return
	}
	if it.created || it.swept {
		beforePublish(it.msg)
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		if err := s.pub.PublishRoom(ctx, it.msg.ChatRoomID, true, EventNewMessage, it.msg); err != nil {
			// Its outbox entry stays: a sweep publishes it again once the
			// claim lapses (clients dedupe by _id). The sender's ack still
			// succeeds: the message exists.
			s.log.Warn("publish newMessage; the outbox sweep retries it", "room", it.msg.ChatRoomID, "message", it.msg.ID, "err", err)
		} else {
			s.store.MessagesPublished(it.msg.ID)
		}
		cancel()
		s.pubMu.Lock()
		delete(s.inflight, it.msg.ID)
		s.pubMu.Unlock()
		s.queueOffline(it.msg, it.members)
	}
	if it.done != nil {
		it.done(it.msg, nil)
	}
}

// publishTimeout bounds one publication.
const publishTimeout = 10 * time.Second

// sweep publishes, until ctx is done, the stored messages that no live path
// published: at start (a previous run may have died between write and
// broadcast) and every sweepInterval.
func (s *Service) sweep(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	var warned time.Time // a store that is down fails every sweep: say so once a minute
	for {
		if err := s.sweepOnce(ctx); err != nil && ctx.Err() == nil && time.Since(warned) > time.Minute {
			warned = time.Now()
			s.log.Warn("outbox sweep (said at most once a minute)", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) sweepOnce(ctx context.Context) error {
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, roomsOfTimeout)
		msgs, err := s.store.ClaimUnpublished(cctx, sweepBatch)
		for _, m := range msgs {
			s.pubMu.Lock()
			_, live := s.inflight[m.ID]
			s.pubMu.Unlock()
			if live {
				continue // its live path publishes it and clears its entry
			}
			var members []string
			if room, err := s.room(cctx, m.ChatRoomID); err == nil {
				members = room.Members
			}
			s.log.Info("publishing a stored message its live path did not", "room", m.ChatRoomID, "message", m.ID)
			s.enqueue(pubItem{msg: m, swept: true, members: members})
		}
		cancel()
		if err != nil {
			return err
		}
		if len(msgs) < sweepBatch {
			return nil
		}
	}
	return nil
}

func (s *Service) validateSend(in *SendInput) error {
	if err := s.ValidateRoomID(in.ChatRoomID); err != nil {
		return err
	}
	if strings.TrimSpace(in.Text) == "" {
		return commserver.Invalid("message", "message is required and may not be blank")
	}
	if n := utf8.RuneCountInString(in.Text); n > s.opts.MaxMessageLength {
		return commserver.Invalid("message", "message is %d characters; the limit is %d", n, s.opts.MaxMessageLength)
	}
	switch in.Type {
	case "":
		in.Type = TypeText
	case TypeText, TypeImage, TypeFile, TypeSystem:
	default:
		return commserver.Invalid("messageType", "messageType must be one of text, image, file, system")
	}
	if in.ClientMessageID != "" && (len(in.ClientMessageID) > maxClientMessageID || !idChars.MatchString(in.ClientMessageID)) {
		return commserver.Invalid("clientMessageId", "clientMessageId must be 1 to %d letters, digits or _ . : -", maxClientMessageID)
	}
	if in.ReplyTo != "" {
		if err := ValidateMessageID("replyTo", in.ReplyTo); err != nil {
			return err
		}
	}
	if in.Metadata != nil {
		b, err := json.Marshal(in.Metadata)
		if err != nil {
			return commserver.Invalid("metadata", "metadata must be a JSON object")
		}
		if len(b) > maxMetadataBytes {
			return commserver.Invalid("metadata", "metadata is %d bytes as JSON; the limit is %d", len(b), maxMetadataBytes)
		}
		// The same keys REST refuses in a notification's data: MongoDB would
		// refuse or misread them, and the store would answer INTERNAL.
		if err := commserver.CheckDocument("metadata", in.Metadata); err != nil {
			return err
		}
	}
	return nil
}

// History returns page of the room's history (the seed's getChatRoomMessages).
func (s *Service) History(ctx context.Context, id Identity, roomID string, page, limit int) (Page, error) {
	if err := s.ValidateRoomID(roomID); err != nil {
		return Page{}, err
	}
	if page < 1 {
		return Page{}, commserver.Invalid("page", "page must be 1 or more")
	}
	if limit < 1 || limit > maxPageLimit {
		return Page{}, commserver.Invalid("limit", "limit must be from 1 to %d", maxPageLimit)
	}
	if _, err := s.authorize(ctx, id, roomID); err != nil {
		return Page{}, err
	}
	msgs, total, err := s.store.MessagesPage(ctx, roomID, page, limit)
	if err != nil {
		return Page{}, err
	}
	return Page{Messages: nonNil(msgs), TotalCount: total}, nil
}

// HistoryBefore returns up to limit messages older than the message before
// (oldest first). Paging with it neither skips nor repeats a message when new
// ones arrive meanwhile.
func (s *Service) HistoryBefore(ctx context.Context, id Identity, roomID, before string, limit int) (CursorPage, error) {
	if err := s.ValidateRoomID(roomID); err != nil {
		return CursorPage{}, err
	}
	if err := ValidateMessageID("before", before); err != nil {
		return CursorPage{}, err
	}
	if limit < 1 || limit > maxPageLimit {
		return CursorPage{}, commserver.Invalid("limit", "limit must be from 1 to %d", maxPageLimit)
	}
	if _, err := s.authorize(ctx, id, roomID); err != nil {
		return CursorPage{}, err
	}
	msgs, more, err := s.store.MessagesBefore(ctx, roomID, before, limit)
	if err != nil {
		return CursorPage{}, err
	}
	return CursorPage{Messages: nonNil(msgs), HasMore: more}, nil
}

// MarkRead marks the room's messages as read by the caller.
func (s *Service) MarkRead(ctx context.Context, id Identity, roomID string) (int64, error) {
	if err := s.ValidateRoomID(roomID); err != nil {
		return 0, err
	}
	if _, err := s.authorize(ctx, id, roomID); err != nil {
		return 0, err
	}
	return s.store.MarkRoomRead(ctx, roomID, id.UserID)
}

// Delete soft-deletes a message: its sender or an admin may; the room hears
// messageDeleted. Someone else's message answers not found, so ids cannot be probed.
func (s *Service) Delete(ctx context.Context, id Identity, messageID string) (Message, error) {
	if err := ValidateMessageID("messageId", messageID); err != nil {
		return Message{}, err
	}
	m, err := s.store.Message(ctx, messageID)
	if err != nil {
		return Message{}, err
	}
	if m.SenderID != id.UserID && !s.isAdmin(ctx, id) {
		return Message{}, commserver.Errorf(commserver.CodeNotFound, "no message %s", messageID)
	}
	if m.IsDeleted {
		return m, nil
	}
	m, err = s.store.SoftDeleteMessage(ctx, messageID)
	if err != nil {
		return Message{}, err
	}
	payload := map[string]string{"messageId": m.ID, "chatRoomId": m.ChatRoomID}
	if err := s.pub.PublishRoom(ctx, m.ChatRoomID, true, EventMessageDeleted, payload); err != nil {
		s.log.Warn("publish messageDeleted", "room", m.ChatRoomID, "message", m.ID, "err", err)
	}
	return m, nil
}

// ChatUsers is the admins' list of users who chat (allChatUsers).
func (s *Service) ChatUsers(ctx context.Context, id Identity) ([]ChatUser, error) {
	if !s.isAdmin(ctx, id) {
		return nil, commserver.Errorf(commserver.CodeForbidden, "관리자 권한이 없습니다.")
	}
	users, err := s.store.ChatUsers(ctx)
	if err != nil {
		return nil, err
	}
	if users == nil {
		users = []ChatUser{}
	}
	return users, nil
}

// IsAdmin reports whether id is an admin, by token or by the user's document.
func (s *Service) IsAdmin(ctx context.Context, id Identity) bool { return s.isAdmin(ctx, id) }

// PutRoom creates a room or replaces its members (the main backend's call).
// Members who were removed leave the room's live channel at once.
func (s *Service) PutRoom(ctx context.Context, roomID string, members []string) (Room, error) {
	if err := s.ValidateRoomID(roomID); err != nil {
		return Room{}, err
	}
	seen := make(map[string]bool, len(members))
	clean := make([]string, 0, len(members))
	for i, m := range members {
		if m == "" || len(m) > 128 {
			return Room{}, commserver.Invalid("members", "members[%d] must be a user id of 1 to 128 characters", i)
		}
		if !seen[m] {
			seen[m] = true
			clean = append(clean, m)
		}
	}
	if len(clean) > 10_000 {
		return Room{}, commserver.Invalid("members", "a room has at most 10000 members, got %d", len(clean))
	}
	room, previous, err := s.store.PutRoom(ctx, roomID, clean)
	if err != nil {
		return Room{}, err
	}
	s.rooms.replace(roomID, cachedRoom{room: room})
	if s.inval != nil {
		if err := s.inval.RoomChanged(ctx, roomID); err != nil {
			// Stored; other instances see it when their cache expires.
			s.log.Warn("announce room change", "room", roomID, "err", err, "stale_for_at_most", s.opts.MembershipTTL)
		}
	}
	var removed []string
	for _, p := range previous {
		if !seen[p] {
			removed = append(removed, p)
		}
	}
	if len(removed) > 0 {
		if err := s.pub.EvictFromRoom(ctx, roomID, removed); err != nil {
			s.log.Warn("evict removed members", "room", roomID, "err", err)
		}
	}
	return room, nil
}

// authorize allows id into the room: any room under the open policy; else
// members of the room, and admins. A room that was never registered is
// refused like one the caller does not belong to, so that a non-member
// cannot probe which rooms exist. It returns the room when it is registered
// (its members are who hears about a message while offline).
func (s *Service) authorize(ctx context.Context, id Identity, roomID string) (Room, error) {
	room, err := s.room(ctx, roomID)
	missing := errors.Is(err, commserver.ErrNotFound)
	if err != nil && !missing {
		if s.opts.OpenRooms {
			return Room{}, nil // the open policy needs no member list
		}
		return Room{}, err
	}
	switch {
	case s.opts.OpenRooms, err == nil && room.HasMember(id.UserID):
		return room, nil
	case s.isAdmin(ctx, id):
		return room, nil
	default:
		return Room{}, commserver.Errorf(commserver.CodeForbidden, "you are not a member of chat room %s", roomID)
	}
}

// room returns the room from a short-lived cache, so a busy room costs one
// store read per MembershipTTL, not one per message.
func (s *Service) room(ctx context.Context, roomID string) (Room, error) {
	if c, ok := s.rooms.get(roomID); ok {
		if c.missing {
			return Room{}, commserver.ErrNotFound
		}
		return c.room, nil
	}
	gen := s.rooms.generation()
	room, err := s.store.Room(ctx, roomID)
	missing := errors.Is(err, commserver.ErrNotFound)
	if err != nil && !missing {
		return Room{}, err
	}
	s.rooms.put(roomID, cachedRoom{room: room, missing: missing}, gen)
	return room, err
}

func (s *Service) isAdmin(ctx context.Context, id Identity) bool {
	if id.Admin {
		return true
	}
	if admin, ok := s.admins.get(id.UserID); ok {
		return admin
	}
	gen := s.admins.generation()
	admin, err := s.store.UserIsAdmin(ctx, id.UserID)
	if err != nil {
		s.log.Warn("admin lookup", "user", id.UserID, "err", err)
		return false
	}
	s.admins.put(id.UserID, admin, gen)
	return admin
}

// queueOffline hands the message to Run for offline notifications without
// delaying the sender's acknowledgement. When the queue is full it starts a
// goroutine rather than lose the work or block the writer.
func (s *Service) queueOffline(m Message, members []string) {
	if s.notifier == nil || len(members) == 0 {
		return // no member list (open policy, unregistered room): nobody to notify
	}
	j := offlineJob{msg: m, members: members}
	select {
	case s.offline <- j:
	default:
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.notifyOffline(j) }()
	}
}

func (s *Service) notifyOffline(j offlineJob) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	others := make([]string, 0, len(j.members))
	for _, u := range j.members {
		if u != j.msg.SenderID {
			others = append(others, u)
		}
	}
	if len(others) == 0 {
		return
	}
	online, err := s.online.Online(ctx, others)
	if err != nil {
		// Better a notification too many than one lost: treat everyone as offline.
		s.log.Warn("offline notifications: presence unknown, notifying every member", "room", j.msg.ChatRoomID, "err", err)
		online = nil
	}
	var offline []string
	for _, u := range others {
		if !online[u] {
			offline = append(offline, u)
		}
	}
	if len(offline) == 0 {
		return
	}
	if err := s.notifier.ChatMessage(ctx, j.msg, offline); err != nil {
		s.log.Warn("offline notifications", "room", j.msg.ChatRoomID, "message", j.msg.ID, "err", err)
	}
}

func nonNil(m []Message) []Message {
	if m == nil {
		return []Message{}
	}
	return m
}

// Room returns a room and its members (for the main backend).
func (s *Service) Room(ctx context.Context, roomID string) (Room, error) {
	if err := s.ValidateRoomID(roomID); err != nil {
		return Room{}, err
	}
	return s.store.Room(ctx, roomID)
}
