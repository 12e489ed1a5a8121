package commserver

import "time"

// JSDateFormat is how JavaScript's Date.prototype.toJSON writes a date: UTC,
// exactly three decimals. Mongoose's toJSON gave the app every date so.
const JSDateFormat = "2006-01-02T15:04:05.000Z"

// JSTime is a time that marshals to JSON as JSDateFormat, for the documents
// the app receives in the NestJS server's shape.
type JSTime time.Time

// MarshalJSON writes the time as JavaScript would.
func (t JSTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(JSDateFormat) + `"`), nil
}

// JSTimePtr converts an optional time; nil stays nil (omitted with omitempty).
func JSTimePtr(t *time.Time) *JSTime {
	if t == nil {
		return nil
	}
	j := JSTime(*t)
	return &j
}
