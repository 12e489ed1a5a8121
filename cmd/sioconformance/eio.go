package main

import "github.com/fitmate/commserver/gateway/socketio/engine"

// echo is the engine.io-protocol suite's server: every message goes back.
type echo struct{}

func (echo) OnOpen(*engine.Session) {}
func (echo) OnMessage(s *engine.Session, data []byte, binary bool) {
	_ = s.Send(data, binary)
}
func (echo) OnOversize(*engine.Session, []byte, bool) bool { return false }
func (echo) OnClose(*engine.Session, string)               {}
