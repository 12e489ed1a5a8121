package store

import (
	commserver "github.com/fitmate/commserver"
	"math"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The free-form parts of documents (a message's metadata, a notification's
// data) go through these two, so that they are stored as the NestJS server
// stored them and read back as the app got them.

// bsonValue turns decoded JSON into what Node's BSON serializer would have
// stored for the same JavaScript value: objects keep their keys (sorted here,
// as Go maps have no order), and whole numbers that fit 32 bits are int32.
func bsonValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		d := make(bson.D, len(keys))
		for i, k := range keys {
			d[i] = bson.E{Key: k, Value: bsonValue(t[k])}
		}
		return d
	case []any:
		a := make(bson.A, len(t))
		for i, e := range t {
			a[i] = bsonValue(e)
		}
		return a
	case float64:
		if t == math.Trunc(t) && t >= math.MinInt32 && t <= math.MaxInt32 && !(t == 0 && math.Signbit(t)) {
			return int32(t)
		}
		return t
	default:
		return v
	}
}

// plainValue turns a decoded BSON value into plain JSON values, as
// Mongoose's toJSON gave them to the app: documents become maps, ids hex
// strings, dates ISO strings, numbers float64.
func plainValue(v any) any {
	switch t := v.(type) {
	case bson.D:
		m := make(map[string]any, len(t))
		for _, e := range t {
			m[e.Key] = plainValue(e.Value)
		}
		return m
	case bson.M:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = plainValue(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = plainValue(e)
		}
		return m
	case bson.A:
		a := make([]any, len(t))
		for i, e := range t {
			a[i] = plainValue(e)
		}
		return a
	case []any:
		a := make([]any, len(t))
		for i, e := range t {
			a[i] = plainValue(e)
		}
		return a
	case bson.ObjectID:
		return t.Hex()
	case bson.DateTime:
		return t.Time().UTC().Format(commserver.JSDateFormat)
	case time.Time:
		return t.UTC().Format(commserver.JSDateFormat)
	case bson.Decimal128:
		return t.String()
	case int32: // numbers come back as decoded JSON has them
		return float64(t)
	case int64:
		return float64(t)
	default:
		return v
	}
}
