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
	return t.AppendJSON(make([]byte, 0, len(JSDateFormat)+2))
}

// AppendJSON appends the time as MarshalJSON writes it.
func (t JSTime) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, '"')
	dst = time.Time(t).UTC().AppendFormat(dst, JSDateFormat)
	return append(dst, '"'), nil
}

// JSTimePtr converts an optional time; nil stays nil (omitted with omitempty).
func JSTimePtr(t *time.Time) *JSTime {
	if t == nil {
		return nil
	}
	j := JSTime(*t)
	return &j
}
