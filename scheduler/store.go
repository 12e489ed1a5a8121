package scheduler

import (
	"context"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/goals"
	"github.com/fitmate/commserver/notify"
	"github.com/fitmate/commserver/sms"
)

// The interfaces the jobs consume. Package store implements Store over
// MongoDB (or the embedded store), notify.Service implements Notifier and
// sms.Service implements Texter. Every store method returns commserver
// errors: ErrStorageUnavailable when the database did not answer in time.

// Store is everything the jobs read and record.
type Store interface {
	Ledger
	Activity
	Workouts
	Contacts
	GoalSource
	Archive
}

// Run states, as the ledger records them.
const (
	StateRunning     = "running"     // started; a record left so with no live run is a killed run
	StateOK          = "ok"          // finished
	StateFailed      = "failed"      // ended on an error; retried by catch-up up to maxAttempts
	StatePanic       = "panic"       // a bug; counted as failed
	StateInterrupted = "interrupted" // stopped at a recipient boundary (SIGTERM); finished by the next run
)

// Run is one run of a job: one slot, possibly over several attempts. The
// record shows the latest attempt.
type Run struct {
	ID         string             `json:"runId"` // the latest attempt's id
	Job        string             `json:"job"`
	Slot       commserver.JSTime  `json:"slot"`   // the schedule's firing this run belongs to
	Period     string             `json:"period"` // the slot in the scheduler's time zone
	Trigger    string             `json:"trigger"`
	Instance   string             `json:"instance"`
	State      string             `json:"result"`
	StartedAt  commserver.JSTime  `json:"startedAt"`
	FinishedAt *commserver.JSTime `json:"finishedAt,omitempty"`
	Counts     Counts             `json:"counts"`
	Error      string             `json:"error,omitempty"`
	Attempts   int                `json:"attempts"`
}

// Counts is what a run did. For jobs that notify, Sent counts
// notifications this attempt created, Skipped recipients served before
// (by an earlier attempt or another instance), Failed recipients left for
// the next run; Details adds job-specific counts (texts, documents deleted).
type Counts struct {
	Sent    int64            `json:"sent"`
	Skipped int64            `json:"skipped"`
	Failed  int64            `json:"failed"`
	Details map[string]int64 `json:"details,omitempty"`
}

// Delivery is the record of what a job owed one recipient in one period,
// under a unique key (job, period, recipient).
type Delivery struct {
	Key            string // deliveryKey(job, period, recipient)
	Job            string
	Period         string
	Recipient      string // a user id, or user/goal for goal-check
	UserID         string
	RunID          string
	NotificationID string
	Created        bool         // this attempt inserted the notification
	Text           *TextOutcome // nil: no text was due
	At             time.Time
}

// Text states.
const (
	TextClaimed = "claimed" // claimed, outcome not recorded yet (or the process died while sending)
	TextSent    = "sent"    // Twilio accepted it (see Status)
	TextFailed  = "failed"  // refused or failed; smslogs says why when it got that far
	TextUnknown = "unknown" // Twilio did not confirm; its status callback settles smslogs
	TextRefused = "refused" // refused before Twilio (number, country, limits): nothing was sent
	TextSkipped = "skipped" // attempted before: at most one text per delivery
)

// TextOutcome is what became of a delivery's text.
type TextOutcome struct {
	State  string
	Status string // smslogs status
	LogID  string // smslogs entry
	Error  string
}

// Ledger keeps the runs and the deliveries, in collections of ours
// (jobruns, jobdeliveries). It is what makes a job send nothing twice.
type Ledger interface {
	// BeginRun records that an attempt at r's run starts: the run record
	// (keyed by job and slot) is created or taken over by r.ID, its
	// attempts counted.
	BeginRun(ctx context.Context, r Run) error
	// EndRun records the attempt's outcome, unless another attempt has taken
	// the run over since (its RunID differs).
	EndRun(ctx context.Context, r Run) error
	// RunOf returns the record of job's run at slot: commserver.ErrNotFound when none.
	RunOf(ctx context.Context, job string, slot time.Time) (Run, error)
	// LastRun returns job's most recently started run: commserver.ErrNotFound when none.
	LastRun(ctx context.Context, job string) (Run, error)
	// Delivered returns the recipients whose delivery of job in period is recorded.
	Delivered(ctx context.Context, job, period string) (map[string]bool, error)
	// RecordDelivery records d under d.Key (writing it again changes nothing).
	RecordDelivery(ctx context.Context, d Delivery) error
	// ClaimText records that d's text is about to be sent, under its own
	// unique key (d.Key + "#sms"). It reports false when the claim exists:
	// the text was attempted before and must not be sent again.
	ClaimText(ctx context.Context, d Delivery) (bool, error)
	// SettleText records the outcome of a claimed text.
	SettleText(ctx context.Context, d Delivery, o TextOutcome) error
	// PruneLedger deletes runs and deliveries recorded before before.
	PruneLedger(ctx context.Context, before time.Time) (int64, error)
}

// Activity is what tells an active user (see Options.ActiveSources).
type Activity interface {
	// RecordConnections records each user's last connection to this server
	// (a collection of ours keyed by user id); a time never moves back.
	RecordConnections(ctx context.Context, seen map[string]time.Time) error
	// ConnectedSince returns the users whose last recorded connection is at or after since.
	ConnectedSince(ctx context.Context, since time.Time) ([]string, error)
	// UsersActiveSince returns the users whose users document has lastActiveAt at or after since.
	UsersActiveSince(ctx context.Context, since time.Time) ([]string, error)
	// WorkoutUsersSince returns the users with a workout_completed notification created at or after since.
	WorkoutUsersSince(ctx context.Context, since time.Time) ([]string, error)
	// PruneConnections forgets connections recorded before before.
	PruneConnections(ctx context.Context, before time.Time) (int64, error)
}

// Workout is one workout_completed notification, as the reports read it.
type Workout struct {
	ID          string // the notification's id (pages are ordered by it)
	UserID      string
	At          time.Time // the notification's createdAt
	Duration    float64   // data.duration, minutes
	HasDuration bool
	Calories    float64 // data.calories
	HasCalories bool
}

// Workouts reads workout_completed notifications.
type Workouts interface {
	// Workouts returns up to limit workout_completed notifications created
	// in [from, to) whose id is after afterID (all when empty), in id order;
	// only those of userIDs when it is not nil.
	Workouts(ctx context.Context, from, to time.Time, userIDs []string, afterID string, limit int) ([]Workout, error)
}

// Contact is what the users collection says about texting a user.
type Contact struct {
	Name        string
	PhoneNumber string
	SMSEnabled  bool // smsNotificationEnabled is true
}

// Contacts reads users (never writes them).
type Contacts interface {
	// Contacts returns the contacts of those users that have a users document.
	Contacts(ctx context.Context, userIDs []string) (map[string]Contact, error)
}

// GoalSource lists the goals goal-check watches.
type GoalSource interface {
	// AllGoals returns every user's goals.
	AllGoals(ctx context.Context) ([]goals.Goal, error)
}

// ArchivedMessage is a chat message copied to the archive.
type ArchivedMessage struct {
	ID        string
	UpdatedAt time.Time // as copied; zero when the document had none
}

// Archive moves old chat messages to chatmessages_archive in two steps, so
// that a run stopped between them loses nothing: the next run copies again
// (the same _id: a copy replaces the copy) and deletes.
type Archive interface {
	// CopyOldMessages copies up to limit chat messages whose timestamp is
	// before cutoff, lowest _id first, into the archive under their own _id,
	// and returns them once the archive acknowledged every write.
	CopyOldMessages(ctx context.Context, cutoff time.Time, limit int) ([]ArchivedMessage, error)
	// DeleteArchivedMessages deletes copied messages from chatmessages,
	// except those changed since their copy (the next run copies them
	// again); it returns how many it deleted.
	DeleteArchivedMessages(ctx context.Context, ms []ArchivedMessage) (int64, error)
}

// Notifier stores and pushes notifications (notify.Service).
type Notifier interface {
	// CreateOnce creates the notification under id unless one with that id
	// exists; created is false then, and nothing is pushed.
	CreateOnce(ctx context.Context, id string, in notify.CreateInput) (n notify.Notification, created bool, err error)
	// DeleteExpired deletes expired notifications.
	DeleteExpired(ctx context.Context) (int64, error)
	// DeleteOldRead deletes read notifications created before before.
	DeleteOldRead(ctx context.Context, before time.Time) (int64, error)
}

// Texter sends texts through the SMS service, with its limits and its
// smslogs entry for every attempt (sms.Service).
type Texter interface {
	SendWorkoutReminder(ctx context.Context, phoneNumber, userName, workoutType string) (sms.Result, error)
}
