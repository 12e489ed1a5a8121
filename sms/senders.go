package sms

import (
	"context"
	"log/slog"
)

var (
	_ Sender = (*LogSender)(nil)
	_ Sender = Unconfigured("")
)

// LogSender is the development sender (SMS_SENDER=log): it writes each
// message to the application log instead of sending it, and says so. It logs
// the redacted text: an OTP code is masked there too.
type LogSender struct {
	log *slog.Logger
}

// NewLogSender returns a LogSender writing to log.
func NewLogSender(log *slog.Logger) *LogSender { return &LogSender{log: log} }

// Send implements Sender; it never fails.
func (s *LogSender) Send(_ context.Context, m Message) (Receipt, error) {
	s.log.Info("sms: SMS_SENDER=log, message written here and NOT sent", "to", maskPhone(m.To), "text", m.Redacted)
	return Receipt{Status: StatusLogged}, nil
}

// Unconfigured is the sender when Twilio's credentials are missing: every
// send is refused with the reason, nothing is attempted.
type Unconfigured string

// Send implements Sender; it always fails with NotConfigured.
func (u Unconfigured) Send(context.Context, Message) (Receipt, error) {
	return Receipt{}, &SendError{NotConfigured: true, Message: string(u)}
}
