package socketio

import "github.com/fitmate/commserver/gateway/socketio/engine"

// Types of the engine that the application meets through this package, so
// that it needs no other import.
type (
	// Timer is a timer on the server's wheel (Socket.AfterFunc, Server.AfterFunc).
	Timer = engine.Timer
	// CORS configures the polling transport's CORS headers (Options.CORS).
	CORS = engine.CORS
	// Wheel is a timing wheel (Options.Wheel, to share one).
	Wheel = engine.Wheel
	// EngineStats are the Engine.IO server's counters (Stats.Engine).
	EngineStats = engine.Stats
)
