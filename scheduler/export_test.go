package scheduler

// Internals the external tests check directly.
var (
	ParseSchedule  = parseSchedule
	LatestSlot     = latestSlot
	WeekOf         = weekOf
	MonthOf        = monthOf
	NotificationID = notificationID
	DeliveryKey    = deliveryKey
	PeriodKey      = periodKey
)
