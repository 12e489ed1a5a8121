package main

import (
	"crypto/rand"
	"log/slog"

	"github.com/fitmate/commserver/config"
	"github.com/fitmate/commserver/sms"
	"github.com/fitmate/commserver/store"
	"github.com/redis/go-redis/v9"
)

// newSMS builds the SMS service: the sender SMS_SENDER and the Twilio
// settings choose, limits and phone verification in Redis when there is one.
// rdb may be nil: verification then fails closed and limits are per instance.
func newSMS(cfg config.Config, db *store.DB, rdb redis.UniversalClient, log *slog.Logger) (*sms.Service, error) {
	log = log.With("component", "sms")
	numbers, err := sms.NewNumbers(cfg.SMSDefaultRegion, cfg.SMSAllowedCountries)
	if err != nil {
		return nil, err
	}
	var sender sms.Sender
	switch {
	case cfg.SMSSender == "log":
		log.Warn("SMS_SENDER=log: texts are written to this log and NOT sent (development only)")
		sender = sms.NewLogSender(log)
	case cfg.TwilioAccountSID == "" || cfg.TwilioAuthToken == "" ||
		(cfg.TwilioPhoneNumber == "" && cfg.TwilioMessagingServiceSID == ""):
		reason := "Twilio credentials are not configured: set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and " +
			"TWILIO_PHONE_NUMBER (or TWILIO_MESSAGING_SERVICE_SID)"
		log.Warn(reason + "; every text is refused and logged as failed")
		sender = sms.Unconfigured(reason)
	default:
		tw, err := sms.NewTwilioSender(sms.TwilioOptions{AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.TwilioAuthToken,
			From: cfg.TwilioPhoneNumber, MessagingServiceSID: cfg.TwilioMessagingServiceSID, BaseURL: cfg.TwilioAPIBaseURL,
			Timeout: cfg.TwilioTimeout, MaxRetries: cfg.TwilioMaxRetries})
		if err != nil {
			return nil, err
		}
		sender = tw
	}

	pepper := cfg.OTPPepper
	if pepper == nil { // no JWT_SECRET and no Redis (config checked): one instance, its own pepper
		pepper = make([]byte, 32)
		_, _ = rand.Read(pepper)
	}
	var limits sms.Limiter = sms.NewMemoryLimiter()
	var otp *sms.Verifications
	if rdb != nil {
		limits = sms.NewRedisLimiter(rdb, cfg.SMSRedisPrefix)
		otp = sms.NewVerifications(rdb, sms.OTPOptions{Prefix: cfg.SMSRedisPrefix, Pepper: pepper, TTL: cfg.OTPTTL,
			MaxAttempts: cfg.OTPMaxAttempts, Cooldown: cfg.OTPResendCooldown, DailyLimit: cfg.OTPDailyLimit})
	} else {
		log.Warn("no REDIS_URL: phone verification (/sms/request-otp, /sms/verify-otp) answers 503; SMS limits are per instance")
	}
	if cfg.PublicURL == "" {
		log.Info("PUBLIC_URL is not set: Twilio is asked for no status callbacks, and /sms/status-callback answers 403")
	}
	return sms.NewService(db, sender, limits, otp, numbers, sms.Options{
		AppURL: cfg.AppURL, PublicURL: cfg.PublicURL, TwilioAuthToken: cfg.TwilioAuthToken,
		NumberDailyLimit: cfg.SMSNumberDailyLimit, NotificationHourlyLimit: cfg.SMSNotifyHourlyLimit,
		OTPRequestsPerIP: cfg.OTPIPRequests, OTPVerifiesPerIP: cfg.OTPIPVerifies, OTPIPWindow: cfg.OTPIPWindow,
		OTPGlobalHourly: cfg.OTPGlobalHourlyLimit, Pepper: pepper,
	}, log), nil
}
