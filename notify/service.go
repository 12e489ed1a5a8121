package notify

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/chat"
	"github.com/fitmate/commserver/coalesce"
)

// Store persists notifications and reads the users collection (read only).
// Every method returns commserver errors: ErrStorageUnavailable when the
// store did not answer in time, ErrNotFound for a notification the user does
// not have, ErrInvalid for an id of the wrong shape. Reads at now leave out
// notifications whose expiresAt is not after now, whether or not the database
// removes them itself.
type Store interface {
	// InsertNotifications stores ns (which have no ID yet) in one batch and
	// returns them with their ids, in the same order.
	InsertNotifications(ctx context.Context, ns []Notification) ([]Notification, error)
	// Notifications returns the user's unexpired notifications, newest first,
	// skipping skip and returning at most limit.
	Notifications(ctx context.Context, userID string, now time.Time, skip, limit int) ([]Notification, error)
	// CountNotifications counts the user's unexpired notifications and the unread among them.
	CountNotifications(ctx context.Context, userID string, now time.Time) (total, unread int64, err error)
	// CountUnread counts the unread, unexpired notifications of each user in
	// one query; a user without any may be absent from the map.
	CountUnread(ctx context.Context, userIDs []string, now time.Time) (map[string]int64, error)
	// MarkNotificationRead marks the user's unexpired notification read (readAt = now)
	// and returns it; changed is false when it was read already. ErrNotFound
	// when the user has no such notification (someone else's included).
	MarkNotificationRead(ctx context.Context, userID, id string, now time.Time) (n Notification, changed bool, err error)
	// MarkAllNotificationsRead marks every unread, unexpired notification of the user read; it returns how many.
	MarkAllNotificationsRead(ctx context.Context, userID string, now time.Time) (int64, error)
	// DeleteNotification deletes the user's unexpired notification and returns
	// what it was. ErrNotFound when the user has no such notification.
	DeleteNotification(ctx context.Context, userID, id string, now time.Time) (Notification, error)
	// DeleteOldReadNotifications deletes read notifications created before before; it returns how many.
	DeleteOldReadNotifications(ctx context.Context, before time.Time) (int64, error)
	// DeleteExpiredNotifications deletes notifications whose expiresAt is not
	// after now. It returns the users who lost an unread one, and how many were deleted.
	DeleteExpiredNotifications(ctx context.Context, now time.Time) (users []string, deleted int64, err error)
	// NotificationContact reads the user's phone number and SMS opt-in from
	// users; a user without a document has the zero Contact.
	NotificationContact(ctx context.Context, userID string) (Contact, error)
	// InsertNotificationOnce stores n under its ID unless a notification
	// with that ID exists; then it returns that one and created false.
	InsertNotificationOnce(ctx context.Context, n Notification) (stored Notification, created bool, err error)
}

// Publisher delivers an event to every socket of a user, on every instance
// (implemented by the gateway's hub). A user with no socket is not an error.
// An error means the event may not have reached the user's sockets; the
// notification is stored either way, so the service logs it and goes on.
type Publisher interface {
	PublishUser(ctx context.Context, userID, event string, payload any) error
}

// OnlineChecker tells which users have at least one socket anywhere
// (implemented by package presence). On error the service treats the user
// as offline: an urgent notification missed costs more than one SMS too many.
type OnlineChecker interface {
	Online(ctx context.Context, userIDs []string) (map[string]bool, error)
}

// OfflineChannel reaches a user who has no socket open, outside the app (SMS).
// It is handed only high and urgent notifications of users whose users
// document opts in to SMS and has a phone number. Its signature uses only
// the standard library, so the SMS package implements it without importing
// notify. An error means the user was not reached; the service logs it (the
// notification stays stored and unread).
type OfflineChannel interface {
	SendOffline(ctx context.Context, userID, phoneNumber, title, body string) error
}

// Limits of what a caller may create. They are not configuration: other
// teams code against them.
const (
	MaxUserIDLength  = 128
	MaxTitleLength   = 200  // characters
	MaxMessageLength = 2000 // characters
	MaxDataBytes     = 8192 // data, as JSON
	MaxNameLength    = 100  // exerciseName, goalName (characters)
	DefaultPageLimit = 20
	MaxPageLimit     = 100
	MaxPage          = 10_000
	// ChatPreviewLength is how much of a chat message an offline notification quotes.
	ChatPreviewLength = 100
)

// maxCountBatch is the most users one unread-count query asks about.
const maxCountBatch = 500

// The seed's texts for its helper notifications (notifications.service.ts).
const (
	workoutCompletedTitle  = "운동 완료! 🎉"
	goalAchievedTitle      = "목표 달성! 🏆"
	workoutReminderTitle   = "운동 시간이에요! ⏰"
	workoutReminderMessage = "오늘의 운동을 시작해보세요. 건강한 하루를 만들어가요!"
	chatMessageTitle       = "새 메시지 💬"
	chatImagePreview       = "사진을 보냈습니다."
	chatFilePreview        = "파일을 보냈습니다."
	chatSummaryFormat      = "새 메시지 %d개 · %s" // count, the latest message's preview
)

// Background work limits.
const (
	backgroundTimeout = 10 * time.Second       // one recount and push, or one offline hand-off
	expiryHorizon     = 24 * time.Hour         // expiries further away are left to the cleanup job
	maxWatched        = 100_000                // expiries watched at once
	maxRecountPause   = 250 * time.Millisecond // longest pause between two counts of one user
	userStateKeep     = time.Minute            // how long a user's change time is remembered
	maxUserStates     = 4096                   // states kept before old ones are pruned
)

// Options are the service's settings.
type Options struct {
	// Now is the clock; nil means time.Now. Tests move it to expire notifications.
	Now func() time.Time
	// ChatWindow is how long a member offline in a room gets no other
	// chat_message notification of it after one: what arrives meanwhile is
	// summed up in one when it ends. 0 means DefaultChatWindow.
	ChatWindow time.Duration
}

// DefaultChatWindow is Options.ChatWindow's default.
const DefaultChatWindow = time.Minute

// Service is the notification domain's operations. Its methods are safe for
// concurrent use. Run owns its background work.
type Service struct {
	store   Store
	pub     Publisher
	online  OnlineChecker
	offline OfflineChannel
	now     func() time.Time
	log     *slog.Logger

	mu        sync.Mutex
	users     map[string]*userState // users whose unread count is being pushed or changed recently
	lastPrune time.Time

	bgMu   sync.Mutex
	closed bool
	bg     sync.WaitGroup

	expiries chan expiry
	counter  *coalesce.Group[int64] // every unread count goes through it
	chats    *chatWindows           // offline members' chat notifications, coalesced per room
}

// userState coalesces unread-count pushes: at most one recount per user
// runs at a time, and changes while it runs make it count once more.
type userState struct {
	running bool
	dirty   bool
	changed time.Time // the last change to the user's unread set
}

var _ chat.Notifier = (*Service)(nil)

// New returns the notification service. offline may be nil (no channel
// outside the app). Call Run to watch expiries and to own background work.
func New(store Store, pub Publisher, online OnlineChecker, offline OfflineChannel, opts Options, log *slog.Logger) *Service {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	window := opts.ChatWindow
	if window <= 0 {
		window = DefaultChatWindow
	}
	s := &Service{store: store, pub: pub, online: online, offline: offline, now: now, log: log,
		users: map[string]*userState{}, expiries: make(chan expiry, 1024), chats: newChatWindows(window)}
	s.counter = coalesce.New("the unread count", maxCountBatch, backgroundTimeout, func(ctx context.Context, userIDs []string) (map[string]int64, error) {
		return store.CountUnread(ctx, userIDs, s.now())
	})
	return s
}

// Run pushes the new unread count to users whose unread notifications
// expire, until ctx is done; then it waits for the background work already
// started (pushes, offline hand-offs). Work asked for after that is done
// synchronously by its caller.
func (s *Service) Run(ctx context.Context) {
	summaries := make(chan struct{})
	go func() { defer close(summaries); s.sumUpChats(ctx) }()
	s.watchExpiries(ctx)
	<-summaries
	s.bgMu.Lock()
	s.closed = true
	s.bgMu.Unlock()
	s.bg.Wait()
}

// background runs fn on a goroutine the service owns, or here once Run has stopped.
func (s *Service) background(fn func()) {
	s.bgMu.Lock()
	if s.closed {
		s.bgMu.Unlock()
		fn()
		return
	}
	s.bg.Add(1)
	s.bgMu.Unlock()
	go func() {
		defer s.bg.Done()
		fn()
	}()
}

// Create validates, stores and delivers a notification: the user's sockets
// get newNotification and the recounted unreadNotificationCount. A user with
// no socket finds it stored and unread, and is counted right on connect; a
// high or urgent one also goes to the offline channel when the user opted in.
func (s *Service) Create(ctx context.Context, in CreateInput) (Notification, error) {
	n, err := s.build(in)
	if err != nil {
		return Notification{}, err
	}
	stored, err := s.store.InsertNotifications(ctx, []Notification{n})
	if err != nil {
		return Notification{}, err
	}
	s.deliver(ctx, stored)
	return stored[0], nil
}

// build validates in and returns the notification to store.
func (s *Service) build(in CreateInput) (Notification, error) {
	if err := ValidateUserID("userId", in.UserID); err != nil {
		return Notification{}, err
	}
	if err := checkText("title", in.Title, MaxTitleLength); err != nil {
		return Notification{}, err
	}
	if err := checkText("message", in.Message, MaxMessageLength); err != nil {
		return Notification{}, err
	}
	if in.Type == "" {
		return Notification{}, commserver.Invalid("type", "type is required: one of %s", joinOr(Types))
	}
	if !slices.Contains(Types, in.Type) {
		return Notification{}, commserver.Invalid("type", "type must be one of %s, got %q", joinOr(Types), in.Type)
	}
	if in.Priority == "" {
		in.Priority = PriorityNormal
	} else if !slices.Contains(Priorities, in.Priority) {
		return Notification{}, commserver.Invalid("priority", "priority must be one of %s, got %q", joinOr(Priorities), in.Priority)
	}
	if err := checkData(in.Data); err != nil {
		return Notification{}, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	var expires *time.Time
	if in.ExpiresAt != nil {
		e := in.ExpiresAt.UTC().Truncate(time.Millisecond)
		if !e.After(now) {
			return Notification{}, commserver.Invalid("expiresAt", "expiresAt must be in the future (it is %s, now is %s)",
				e.Format(time.RFC3339), now.Format(time.RFC3339))
		}
		expires = &e
	}
	return Notification{UserID: in.UserID, Title: in.Title, Message: in.Message, Type: in.Type, Data: in.Data,
		Priority: in.Priority, ExpiresAt: expires, CreatedAt: now, UpdatedAt: now}, nil
}

// deliver pushes stored notifications to their users' sockets, recounts
// their unread sets, watches their expiry and hands urgent ones of offline
// users to the offline channel.
func (s *Service) deliver(ctx context.Context, ns []Notification) {
	seen := make(map[string]bool, len(ns))
	for _, n := range ns {
		if err := s.pub.PublishUser(ctx, n.UserID, EventNewNotification, n); err != nil {
			// Stored: the user finds it in the list and the count.
			s.log.Warn("publish newNotification", "user", n.UserID, "notification", n.ID, "err", err)
		}
		if !seen[n.UserID] {
			seen[n.UserID] = true
			s.pushUnread(n.UserID)
		}
		if n.ExpiresAt != nil {
			s.watchExpiry(n.UserID, *n.ExpiresAt)
		}
		if n.Priority == PriorityHigh || n.Priority == PriorityUrgent {
			s.background(func() { s.reachOffline(n) })
		}
	}
}

// reachOffline hands n to the offline channel when its user has no socket
// and has opted in to SMS with a phone number.
func (s *Service) reachOffline(n Notification) {
	if s.offline == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), backgroundTimeout)
	defer cancel()
	online, err := s.online.Online(ctx, []string{n.UserID})
	if err != nil {
		// An urgent notification missed costs more than one text too many.
		s.log.Warn("offline channel: presence unknown, treating the user as offline", "user", n.UserID, "err", err)
	} else if online[n.UserID] {
		return
	}
	c, err := s.store.NotificationContact(ctx, n.UserID)
	if err != nil {
		s.log.Warn("offline channel: reading the user's contact", "user", n.UserID, "notification", n.ID, "err", err)
		return
	}
	if !c.SMSEnabled || c.PhoneNumber == "" {
		s.log.Debug("offline channel: user has not opted in to SMS", "user", n.UserID, "notification", n.ID)
		return
	}
	if err := s.offline.SendOffline(ctx, n.UserID, c.PhoneNumber, n.Title, n.Message); err != nil {
		s.log.Warn("offline channel", "user", n.UserID, "notification", n.ID, "err", err)
	}
}

// List returns page (1-based) of the user's notifications, newest first,
// with the user's total and unread counts.
func (s *Service) List(ctx context.Context, userID string, page, limit int) (Page, error) {
	if page < 1 || page > MaxPage {
		return Page{}, commserver.Invalid("page", "page must be from 1 to %d", MaxPage)
	}
	if limit < 1 || limit > MaxPageLimit {
		return Page{}, commserver.Invalid("limit", "limit must be from 1 to %d", MaxPageLimit)
	}
	now := s.now()
	ns, err := s.store.Notifications(ctx, userID, now, (page-1)*limit, limit)
	if err != nil {
		return Page{}, err
	}
	total, unread, err := s.store.CountNotifications(ctx, userID, now)
	if err != nil {
		return Page{}, err
	}
	if ns == nil {
		ns = []Notification{}
	}
	return Page{Notifications: ns, TotalCount: total, UnreadCount: unread}, nil
}

// UnreadCount counts the user's unread, unexpired notifications. The gateway
// sends it to a socket as it connects; when the unread set changed while it
// was being counted, the user's sockets get a fresh count after it.
func (s *Service) UnreadCount(ctx context.Context, userID string) (int64, error) {
	start := time.Now()
	n, err := s.counter.Get(ctx, userID)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	st := s.users[userID]
	stale := st != nil && (st.running || !st.changed.Before(start))
	s.mu.Unlock()
	if stale {
		s.pushUnread(userID)
	}
	return n, nil
}

// MarkRead marks one of the user's notifications read. Another user's
// notification answers not found, so ids cannot be probed.
func (s *Service) MarkRead(ctx context.Context, userID, id string) (Notification, error) {
	if err := ValidateID("id", id); err != nil {
		return Notification{}, err
	}
	n, _, err := s.store.MarkNotificationRead(ctx, userID, id, s.now().UTC().Truncate(time.Millisecond))
	if err != nil {
		return Notification{}, err
	}
	// Pushed even when it was read already: the user acted on the badge,
	// and a client whose count went stale gets it right again.
	s.pushUnread(userID)
	return n, nil
}

// MarkAllRead marks every unread notification of the user read and returns how many changed.
func (s *Service) MarkAllRead(ctx context.Context, userID string) (int64, error) {
	n, err := s.store.MarkAllNotificationsRead(ctx, userID, s.now().UTC().Truncate(time.Millisecond))
	if err != nil {
		return 0, err
	}
	s.pushUnread(userID)
	return n, nil
}

// Delete deletes one of the user's notifications. Another user's
// notification answers not found.
func (s *Service) Delete(ctx context.Context, userID, id string) (Notification, error) {
	if err := ValidateID("id", id); err != nil {
		return Notification{}, err
	}
	n, err := s.store.DeleteNotification(ctx, userID, id, s.now())
	if err != nil {
		return Notification{}, err
	}
	if !n.IsRead {
		s.pushUnread(userID)
	}
	return n, nil
}

// DeleteOldRead deletes read notifications created before before (for the
// cleanup job: the seed removed read ones older than 30 days).
func (s *Service) DeleteOldRead(ctx context.Context, before time.Time) (int64, error) {
	return s.store.DeleteOldReadNotifications(ctx, before)
}

// DeleteExpired deletes expired notifications (for the cleanup job: the
// embedded store has no TTL monitor) and pushes a fresh count to users who
// lost an unread one.
func (s *Service) DeleteExpired(ctx context.Context) (int64, error) {
	users, n, err := s.store.DeleteExpiredNotifications(ctx, s.now())
	for _, u := range users {
		s.pushUnread(u)
	}
	return n, err
}

// WorkoutCompleted notifies that a workout was recorded, in the seed's
// words. workout is the main backend's workout record: it needs exerciseName
// (text), duration (minutes) and calories (numbers), and is stored whole as
// the notification's data, as the seed did.
func (s *Service) WorkoutCompleted(ctx context.Context, userID string, workout map[string]any) (Notification, error) {
	if err := ValidateUserID("userId", userID); err != nil {
		return Notification{}, err
	}
	name, err := nameField(workout, "exerciseName")
	if err != nil {
		return Notification{}, err
	}
	duration, err := numberField(workout, "duration")
	if err != nil {
		return Notification{}, err
	}
	calories, err := numberField(workout, "calories")
	if err != nil {
		return Notification{}, err
	}
	return s.Create(ctx, CreateInput{
		UserID:  userID,
		Title:   workoutCompletedTitle,
		Message: fmt.Sprintf("%s 운동을 완료했습니다. 총 %s분 동안 %s칼로리를 소모했어요!", name, jsNumber(duration), jsNumber(calories)),
		Type:    TypeWorkoutCompleted,
		Data:    workout,
	})
}

// GoalAchieved notifies that a goal was reached, in the seed's words. goal
// needs goalName and is stored whole as the notification's data.
func (s *Service) GoalAchieved(ctx context.Context, userID string, goal map[string]any) (Notification, error) {
	if err := ValidateUserID("userId", userID); err != nil {
		return Notification{}, err
	}
	name, err := nameField(goal, "goalName")
	if err != nil {
		return Notification{}, err
	}
	return s.Create(ctx, CreateInput{
		UserID:  userID,
		Title:   goalAchievedTitle,
		Message: name + " 목표를 달성했습니다! 축하드려요!",
		Type:    TypeGoalAchieved,
		Data:    goal,
	})
}

// WorkoutReminder reminds the user to work out, in the seed's words.
func (s *Service) WorkoutReminder(ctx context.Context, userID string) (Notification, error) {
	return s.Create(ctx, CreateInput{UserID: userID, Title: workoutReminderTitle, Message: workoutReminderMessage,
		Type: TypeWorkoutReminder})
}

// ChatMessage tells each recipient (room members who were offline when m
// was sent) of the message. It implements chat.Notifier; chat calls it off
// the sender's path. A recipient with no chat window open for the room gets
// a chat_message notification now, and the window opens; further messages
// of the room within it are counted and summed up in one notification when
// it ends (see chatcoalesce.go), so a flood costs a member a bounded number
// of notifications and recounts, not one per message.
func (s *Service) ChatMessage(ctx context.Context, m chat.Message, recipients []string) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	ns := make([]Notification, 0, len(recipients))
	seen := make(map[string]bool, len(recipients))
	for _, r := range recipients {
		if r == m.SenderID || seen[r] || ValidateUserID("userId", r) != nil {
			continue
		}
		seen[r] = true
		if s.chats.counted(r, m, now) {
			continue
		}
		ns = append(ns, chatNotification(r, m, 1, now))
	}
	if len(ns) == 0 {
		return nil
	}
	stored, err := s.store.InsertNotifications(ctx, ns)
	if err != nil {
		return fmt.Errorf("chat message notifications: %w", err)
	}
	s.deliver(ctx, stored)
	return nil
}

// chatNotification tells user of m, and of count-1 more messages of its
// room before it when count > 1.
func chatNotification(user string, m chat.Message, count int, now time.Time) Notification {
	data := map[string]any{"chatRoomId": m.ChatRoomID, "messageId": m.ID, "senderId": m.SenderID}
	text := chatPreview(m)
	if count > 1 {
		data["count"] = count
		text = truncateRunes(fmt.Sprintf(chatSummaryFormat, count, text), ChatPreviewLength)
	}
	return Notification{UserID: user, Title: chatMessageTitle, Message: text, Type: TypeChatMessage,
		Data: data, Priority: PriorityNormal, CreatedAt: now, UpdatedAt: now}
}

// chatPreview is what an offline member is told of a message: its text,
// cut at ChatPreviewLength characters, or what was sent when it is not text.
func chatPreview(m chat.Message) string {
	switch m.Type {
	case chat.TypeImage:
		return chatImagePreview
	case chat.TypeFile:
		return chatFilePreview
	}
	return truncateRunes(m.Text, ChatPreviewLength)
}

// truncateRunes cuts s to at most n characters, the last one "…" when cut.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// jsNumber writes a number as a JavaScript template literal does: 30, 45.5.
func jsNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// pushUnread recounts the user's unread notifications from the store and
// pushes the count to all of the user's sockets. The count is never kept in
// memory, so it cannot drift. Pushes for one user are serialised and
// coalesced: the last count pushed was counted after the last change.
func (s *Service) pushUnread(userID string) {
	s.mu.Lock()
	st := s.users[userID]
	if st == nil {
		st = &userState{}
		s.users[userID] = st
	}
	st.changed = time.Now()
	if st.running {
		st.dirty = true
		s.mu.Unlock()
		return
	}
	st.running = true
	s.pruneLocked()
	s.mu.Unlock()
	s.background(func() { s.recount(userID) })
}

func (s *Service) recount(userID string) {
	for {
		s.mu.Lock()
		s.users[userID].dirty = false
		s.mu.Unlock()

		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), backgroundTimeout)
		n, err := s.counter.Get(ctx, userID)
		if err == nil {
			err = s.pub.PublishUser(ctx, userID, EventUnreadCount, n)
		}
		cancel()
		if err != nil {
			s.log.Warn("push unread count", "user", userID, "err", err)
		}
		took := time.Since(start)

		s.mu.Lock()
		st := s.users[userID]
		if !st.dirty {
			st.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		// Changed meanwhile: count again, after a pause as long as the count
		// took, so that a burst for one user costs the store at most half
		// its time in counts (a count is a scan on the embedded store).
		time.Sleep(min(took, maxRecountPause))
	}
}

// pruneLocked forgets users whose last change is old, once there are many.
func (s *Service) pruneLocked() {
	if len(s.users) < maxUserStates || time.Since(s.lastPrune) < time.Second {
		return
	}
	s.lastPrune = time.Now()
	for u, st := range s.users {
		if !st.running && time.Since(st.changed) > userStateKeep {
			delete(s.users, u)
		}
	}
}
