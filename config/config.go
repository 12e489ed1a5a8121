// Package config reads the server's configuration from the environment: typed,
// defaulted and validated at start, with every problem reported at once.
// Secrets never appear in what Config prints or logs.
package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Room policies (CHAT_ROOM_POLICY).
const (
	// RoomPolicyMembers lets a user join and post only in rooms whose member list
	// (written by the main backend through PUT /chat/rooms/:roomId) names them.
	RoomPolicyMembers = "members"
	// RoomPolicyOpen is the seed's behaviour: any authenticated user may join
	// any room and read its history. For a migration period only.
	RoomPolicyOpen = "open"
)

// MinJWTSecretBytes is the shortest JWT_SECRET accepted: HS256 with a shorter
// key can be brute-forced offline from one captured token.
const MinJWTSecretBytes = 32

// Config is the whole configuration. Load fills it; nothing else reads the environment.
type Config struct {
	Host string // HOST; empty listens on every interface
	Port int    // PORT

	CORSOrigins []string // CORS_ORIGIN, comma-separated exact origins

	MongoURI string // MONGODB_URI; empty starts the embedded store
	MongoDB  string // MONGODB_DB, or the database named in MONGODB_URI, else "fitmate"
	DataDir  string // DATA_DIR: where the embedded store keeps its files

	RedisURL string // REDIS_URL; empty runs as a single instance

	// Running as several pods over one Redis (docs/cluster.md).
	PresenceGrace       time.Duration // PRESENCE_GRACE: a user with no socket left stays online this long (a reload does not flap)
	PresencePodTTL      time.Duration // PRESENCE_POD_TTL: a pod silent this long is dead; its sockets are dropped
	ClusterRedisPrefix  string        // CLUSTER_REDIS_PREFIX: prefix of the presence keys and the cache channel
	ClusterRedisTimeout time.Duration // CLUSTER_REDIS_TIMEOUT: longest wait for one presence or cache call to Redis

	JWTSecret    []byte           // JWT_SECRET (HS256)
	JWTPublicKey crypto.PublicKey // JWT_PUBLIC_KEY (PEM; RS256 for RSA keys, ES256 for P-256 keys)
	JWTIssuer    string           // JWT_ISSUER, checked when set
	JWTAudience  string           // JWT_AUDIENCE, checked when set
	JWTUserClaim string           // JWT_USER_CLAIM (sub; falls back to userId, then id)
	JWTMaxBytes  int              // JWT_MAX_BYTES: longer tokens are refused unparsed

	ServiceAPIKey string // SERVICE_API_KEY: the main backend's credential (X-API-Key)

	ChatRoomPolicy     string // CHAT_ROOM_POLICY: members (default) or open
	MaxMessageLength   int    // CHAT_MAX_MESSAGE_LENGTH, in characters
	MaxRoomIDLength    int    // CHAT_MAX_ROOM_ID_LENGTH
	MaxPayloadBytes    int64  // SOCKET_MAX_PAYLOAD_BYTES: largest Socket.IO packet or HTTP body
	EventsPerMinute    int    // SOCKET_EVENTS_PER_MINUTE: sustained client events per socket
	EventBurst         int    // SOCKET_EVENT_BURST: events a socket may send at once
	MessageBatchSize   int    // CHAT_WRITE_BATCH: most messages stored in one insert
	PingInterval       time.Duration
	PingTimeout        time.Duration
	RecoveryWindow     time.Duration // SOCKET_RECOVERY_WINDOW: connection state recovery (0: off)
	StoreTimeout       time.Duration // STORE_TIMEOUT: deadline of every store call
	ShutdownTimeout    time.Duration // SHUTDOWN_TIMEOUT: longest graceful shutdown
	ShutdownDrainDelay time.Duration // SHUTDOWN_DRAIN_DELAY: time /readyz reports 503 before sockets close

	HTTPReadTimeout  time.Duration // HTTP_READ_TIMEOUT: longest read of a request's headers, and of its body
	HTTPWriteTimeout time.Duration // HTTP_WRITE_TIMEOUT: longest write of a REST answer (a long-poll gets the ping interval more)
	HTTPIdleTimeout  time.Duration // HTTP_IDLE_TIMEOUT: how long an idle keep-alive connection is kept

	TwilioAccountSID          string // TWILIO_ACCOUNT_SID
	TwilioAuthToken           string // TWILIO_AUTH_TOKEN
	TwilioPhoneNumber         string // TWILIO_PHONE_NUMBER
	TwilioMessagingServiceSID string // TWILIO_MESSAGING_SERVICE_SID (instead of a phone number)
	TwilioAPIBaseURL          string // TWILIO_API_BASE_URL: Twilio's API, or a local one in tests
	SMSSender                 string // SMS_SENDER: twilio (default) or log (development only)
	SMSAllowedCountries       []string
	SMSDefaultRegion          string
	AppURL                    string // APP_URL: the app's address in SMS texts
	PublicURL                 string // PUBLIC_URL: this server's public address (Twilio signatures)

	// SMS and phone verification limits (see README.md).
	TwilioTimeout        time.Duration  // TWILIO_TIMEOUT: longest wait for one Twilio request
	TwilioMaxRetries     int            // TWILIO_MAX_RETRIES: retries of Twilio's 429 (only that is retried)
	SMSNumberDailyLimit  int            // SMS_NUMBER_DAILY_LIMIT: texts per number per 24h, codes excluded
	SMSNotifyHourlyLimit int            // SMS_NOTIFICATION_HOURLY_LIMIT: offline-notification texts per number per hour
	SMSRedisPrefix       string         // SMS_REDIS_PREFIX: prefix of the SMS keys in Redis
	OTPPepper            []byte         // OTP_PEPPER, else derived from JWT_SECRET: keys the codes' hashes
	OTPTTL               time.Duration  // OTP_TTL: a code's lifetime
	OTPMaxAttempts       int            // OTP_MAX_ATTEMPTS: wrong answers that burn a code
	OTPResendCooldown    time.Duration  // OTP_RESEND_COOLDOWN: least time between two codes to a number
	OTPDailyLimit        int            // OTP_DAILY_LIMIT: codes per number per 24h
	OTPIPRequests        int            // OTP_IP_REQUESTS: code requests per client IP per OTP_IP_WINDOW
	OTPIPVerifies        int            // OTP_IP_VERIFIES: code checks per client IP per OTP_IP_WINDOW
	OTPIPWindow          time.Duration  // OTP_IP_WINDOW
	OTPGlobalHourlyLimit int            // OTP_GLOBAL_HOURLY_LIMIT: codes per hour across all numbers (0: no cap)
	TrustedProxies       []netip.Prefix // TRUSTED_PROXIES: whose X-Forwarded-For names the client

	LogLevel  slog.Level // LOG_LEVEL: debug, info, warn, error
	LogFormat string     // LOG_FORMAT: json (default) or text
	PprofAddr string     // PPROF_ADDR: serve net/http/pprof here (e.g. 127.0.0.1:6060); empty disables
	GCFloorMB int        // GC_HEAP_FLOOR_MB: the collector's heap goal is at least this (internal/gcfloor); 0 disables

	Scheduler Scheduler // SCHEDULER_* (config/scheduler.go)
}

// Load reads the configuration through getenv. It returns every problem it
// finds, joined, so an operator fixes them in one go.
func Load(getenv func(string) string) (Config, error) {
	l := loader{getenv: getenv}
	c := Config{
		Host:        l.str("HOST", ""),
		Port:        l.intIn("PORT", 3000, 0, 65535),
		CORSOrigins: l.origins("CORS_ORIGIN", "http://localhost:5173"),

		MongoURI: l.str("MONGODB_URI", ""),
		DataDir:  l.str("DATA_DIR", "./data"),
		RedisURL: l.str("REDIS_URL", ""),

		PresenceGrace:       l.duration("PRESENCE_GRACE", 5*time.Second),
		PresencePodTTL:      l.duration("PRESENCE_POD_TTL", 15*time.Second),
		ClusterRedisPrefix:  l.str("CLUSTER_REDIS_PREFIX", "fitmate:cluster:"),
		ClusterRedisTimeout: l.duration("CLUSTER_REDIS_TIMEOUT", time.Second),

		JWTIssuer:    l.str("JWT_ISSUER", ""),
		JWTAudience:  l.str("JWT_AUDIENCE", ""),
		JWTUserClaim: l.str("JWT_USER_CLAIM", "sub"),
		JWTMaxBytes:  l.intIn("JWT_MAX_BYTES", 8192, 256, 1<<20),

		ServiceAPIKey: l.str("SERVICE_API_KEY", ""),

		ChatRoomPolicy:     l.oneOf("CHAT_ROOM_POLICY", RoomPolicyMembers, RoomPolicyMembers, RoomPolicyOpen),
		MaxMessageLength:   l.intIn("CHAT_MAX_MESSAGE_LENGTH", 4000, 1, 100_000),
		MaxRoomIDLength:    l.intIn("CHAT_MAX_ROOM_ID_LENGTH", 64, 8, 256),
		MaxPayloadBytes:    int64(l.intIn("SOCKET_MAX_PAYLOAD_BYTES", 1_000_000, 1024, 100_000_000)),
		EventsPerMinute:    l.intIn("SOCKET_EVENTS_PER_MINUTE", 100, 1, 100_000_000),
		EventBurst:         l.intIn("SOCKET_EVENT_BURST", 20, 1, 100_000_000),
		MessageBatchSize:   l.intIn("CHAT_WRITE_BATCH", 256, 1, 10_000),
		PingInterval:       l.duration("SOCKET_PING_INTERVAL", 25*time.Second),
		PingTimeout:        l.duration("SOCKET_PING_TIMEOUT", 20*time.Second),
		RecoveryWindow:     l.duration("SOCKET_RECOVERY_WINDOW", 2*time.Minute),
		StoreTimeout:       l.duration("STORE_TIMEOUT", 5*time.Second),
		ShutdownTimeout:    l.duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		ShutdownDrainDelay: l.duration("SHUTDOWN_DRAIN_DELAY", 0),
		HTTPReadTimeout:    l.duration("HTTP_READ_TIMEOUT", 10*time.Second),
		HTTPWriteTimeout:   l.duration("HTTP_WRITE_TIMEOUT", 60*time.Second),
		HTTPIdleTimeout:    l.duration("HTTP_IDLE_TIMEOUT", 2*time.Minute),

		TwilioAccountSID:          l.str("TWILIO_ACCOUNT_SID", ""),
		TwilioAuthToken:           l.str("TWILIO_AUTH_TOKEN", ""),
		TwilioPhoneNumber:         l.str("TWILIO_PHONE_NUMBER", ""),
		TwilioMessagingServiceSID: l.str("TWILIO_MESSAGING_SERVICE_SID", ""),
		TwilioAPIBaseURL:          l.url("TWILIO_API_BASE_URL", "https://api.twilio.com"),
		SMSSender:                 l.oneOf("SMS_SENDER", "twilio", "twilio", "log"),
		SMSAllowedCountries:       l.list("SMS_ALLOWED_COUNTRIES", "KR"),
		SMSDefaultRegion:          strings.ToUpper(l.str("SMS_DEFAULT_REGION", "KR")),
		AppURL:                    l.str("APP_URL", ""),
		PublicURL:                 strings.TrimRight(l.str("PUBLIC_URL", ""), "/"),

		TwilioTimeout:        l.duration("TWILIO_TIMEOUT", 10*time.Second),
		TwilioMaxRetries:     l.intIn("TWILIO_MAX_RETRIES", 3, 0, 10),
		SMSNumberDailyLimit:  l.intIn("SMS_NUMBER_DAILY_LIMIT", 20, 1, 1_000_000),
		SMSNotifyHourlyLimit: l.intIn("SMS_NOTIFICATION_HOURLY_LIMIT", 3, 1, 1_000_000),
		SMSRedisPrefix:       l.str("SMS_REDIS_PREFIX", "fitmate:sms:"),
		OTPTTL:               l.duration("OTP_TTL", 5*time.Minute),
		OTPMaxAttempts:       l.intIn("OTP_MAX_ATTEMPTS", 5, 1, 20),
		OTPResendCooldown:    l.duration("OTP_RESEND_COOLDOWN", time.Minute),
		OTPDailyLimit:        l.intIn("OTP_DAILY_LIMIT", 10, 1, 1000),
		OTPIPRequests:        l.intIn("OTP_IP_REQUESTS", 20, 1, 1_000_000),
		OTPIPVerifies:        l.intIn("OTP_IP_VERIFIES", 60, 1, 1_000_000),
		OTPIPWindow:          l.duration("OTP_IP_WINDOW", 10*time.Minute),
		OTPGlobalHourlyLimit: l.intIn("OTP_GLOBAL_HOURLY_LIMIT", 1000, 0, 100_000_000),
		TrustedProxies:       l.prefixes("TRUSTED_PROXIES", "127.0.0.0/8,::1/128"),

		LogLevel:  l.level("LOG_LEVEL", slog.LevelInfo),
		LogFormat: l.oneOf("LOG_FORMAT", "json", "json", "text"),
		PprofAddr: l.str("PPROF_ADDR", ""),
		GCFloorMB: l.intIn("GC_HEAP_FLOOR_MB", 32, 0, 1<<20),
	}
	c.MongoDB = l.str("MONGODB_DB", databaseFromURI(c.MongoURI))
	c.Scheduler = l.loadScheduler()

	if s := l.getenv("JWT_SECRET"); s != "" {
		if len(s) < MinJWTSecretBytes {
			l.fail("JWT_SECRET is %d bytes; at least %d are required", len(s), MinJWTSecretBytes)
		}
		c.JWTSecret = []byte(s)
	}
	if p := l.getenv("JWT_PUBLIC_KEY"); p != "" {
		key, err := parsePublicKey(p)
		if err != nil {
			l.fail("JWT_PUBLIC_KEY: %v", err)
		}
		c.JWTPublicKey = key
	}
	if c.JWTSecret == nil && c.JWTPublicKey == nil && !l.failed("JWT_") {
		l.fail("JWT_SECRET or JWT_PUBLIC_KEY is required: without one no token can be verified")
	}
	if k := c.ServiceAPIKey; k != "" && len(k) < 16 {
		l.fail("SERVICE_API_KEY is %d bytes; at least 16 are required", len(k))
	}
	if c.MongoURI != "" && !strings.HasPrefix(c.MongoURI, "mongodb://") && !strings.HasPrefix(c.MongoURI, "mongodb+srv://") {
		l.fail("MONGODB_URI must start with mongodb:// or mongodb+srv://")
	}
	if c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") {
		l.fail("REDIS_URL must start with redis:// or rediss://")
	}
	l.checkSMS(&c)
	l.checkCluster(&c)
	if c.PingTimeout <= 0 || c.PingInterval <= 0 {
		l.fail("SOCKET_PING_INTERVAL and SOCKET_PING_TIMEOUT must be positive")
	}
	if c.StoreTimeout <= 0 {
		l.fail("STORE_TIMEOUT must be positive")
	}
	if c.HTTPReadTimeout <= 0 || c.HTTPWriteTimeout <= 0 || c.HTTPIdleTimeout <= 0 {
		l.fail("HTTP_READ_TIMEOUT, HTTP_WRITE_TIMEOUT and HTTP_IDLE_TIMEOUT must be positive")
	}
	if c.ShutdownTimeout <= c.ShutdownDrainDelay {
		l.fail("SHUTDOWN_TIMEOUT must be longer than SHUTDOWN_DRAIN_DELAY")
	}
	if len(l.problems) > 0 {
		return Config{}, fmt.Errorf("configuration: %s", strings.Join(l.problems, "; "))
	}
	return c, nil
}

// Patterns of Twilio's SIDs: a typo is caught at start, not at the first send.
var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSIDPattern = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
)

// otpPepperLabel separates the pepper derived from JWT_SECRET from any other use of it.
const otpPepperLabel = "fitmate-commserver/otp-pepper/v1"

// checkSMS validates the SMS settings and derives the OTP pepper.
func (l *loader) checkSMS(c *Config) {
	if c.TwilioAccountSID != "" && !accountSIDPattern.MatchString(c.TwilioAccountSID) {
		l.fail("TWILIO_ACCOUNT_SID must be AC followed by 32 hexadecimal digits")
	}
	if c.TwilioMessagingServiceSID != "" && !serviceSIDPattern.MatchString(c.TwilioMessagingServiceSID) {
		l.fail("TWILIO_MESSAGING_SERVICE_SID must be MG followed by 32 hexadecimal digits")
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			l.fail("PUBLIC_URL=%q: want this server's public http(s) URL, such as https://comm.example.com", c.PublicURL)
		}
	}
	if len(c.SMSAllowedCountries) == 0 {
		l.fail("SMS_ALLOWED_COUNTRIES must list at least one country (ISO 3166 code such as KR)")
	}
	if c.TwilioTimeout <= 0 {
		l.fail("TWILIO_TIMEOUT must be positive")
	}
	if c.OTPTTL < 10*time.Second || c.OTPTTL > time.Hour {
		l.fail("OTP_TTL=%s: want from 10s to 1h", c.OTPTTL)
	}
	if c.OTPResendCooldown <= 0 || c.OTPIPWindow <= 0 {
		l.fail("OTP_RESEND_COOLDOWN and OTP_IP_WINDOW must be positive")
	}
	switch p := l.getenv("OTP_PEPPER"); {
	case p != "" && len(p) < 32:
		l.fail("OTP_PEPPER is %d bytes; at least 32 are required", len(p))
	case p != "":
		c.OTPPepper = []byte(p)
	case c.JWTSecret != nil:
		m := hmac.New(sha256.New, c.JWTSecret)
		m.Write([]byte(otpPepperLabel))
		c.OTPPepper = m.Sum(nil)
	case c.RedisURL != "":
		l.fail("OTP_PEPPER is required when REDIS_URL is set and JWT_SECRET is not: every instance must hash codes alike")
	}
}

// checkCluster validates the settings of running as several pods.
func (l *loader) checkCluster(c *Config) {
	if c.PresenceGrace > 5*time.Minute {
		l.fail("PRESENCE_GRACE=%s: want at most 5m (0 announces userOffline at once)", c.PresenceGrace)
	}
	if c.PresencePodTTL < 3*time.Second || c.PresencePodTTL > 10*time.Minute {
		l.fail("PRESENCE_POD_TTL=%s: want from 3s to 10m (a pod renews its lease every third of it)", c.PresencePodTTL)
	}
	if c.ClusterRedisTimeout < 10*time.Millisecond || c.ClusterRedisTimeout > 30*time.Second {
		l.fail("CLUSTER_REDIS_TIMEOUT=%s: want from 10ms to 30s", c.ClusterRedisTimeout)
	} else if c.ClusterRedisTimeout > c.PresencePodTTL/3 {
		l.fail("CLUSTER_REDIS_TIMEOUT=%s must be at most a third of PRESENCE_POD_TTL (%s), the lease renewal period, or slow renewals read as a dead pod",
			c.ClusterRedisTimeout, c.PresencePodTTL)
	}
	if strings.ContainsAny(c.ClusterRedisPrefix, "{} \t\r\n") {
		l.fail("CLUSTER_REDIS_PREFIX=%q: no braces (the keys' hash tag) and no spaces", c.ClusterRedisPrefix)
	}
}

// Addr is the address the server listens on.
func (c Config) Addr() string { return fmt.Sprintf("%s:%d", c.Host, c.Port) }

// LogValue prints the configuration with every secret masked.
func (c Config) LogValue() slog.Value {
	mongo := "embedded (" + c.DataDir + ")"
	if c.MongoURI != "" {
		mongo = redactURL(c.MongoURI)
	}
	redis := "none (single instance)"
	if c.RedisURL != "" {
		redis = redactURL(c.RedisURL)
	}
	jwt := []string{}
	if c.JWTSecret != nil {
		jwt = append(jwt, "HS256")
	}
	switch c.JWTPublicKey.(type) {
	case *rsa.PublicKey:
		jwt = append(jwt, "RS256")
	case *ecdsa.PublicKey:
		jwt = append(jwt, "ES256")
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr()),
		slog.Any("cors_origins", c.CORSOrigins),
		slog.String("mongodb", mongo),
		slog.String("database", c.MongoDB),
		slog.String("redis", redis),
		slog.Duration("presence_grace", c.PresenceGrace),
		slog.Duration("presence_pod_ttl", c.PresencePodTTL),
		slog.String("cluster_redis_prefix", c.ClusterRedisPrefix),
		slog.String("jwt", strings.Join(jwt, "+")),
		slog.String("jwt_user_claim", c.JWTUserClaim),
		slog.Bool("service_api_key_set", c.ServiceAPIKey != ""),
		slog.String("chat_room_policy", c.ChatRoomPolicy),
		slog.String("sms_sender", c.SMSSender),
		slog.Bool("twilio_credentials_set", c.TwilioAccountSID != "" && c.TwilioAuthToken != ""),
		slog.Any("sms_allowed_countries", c.SMSAllowedCountries),
		slog.String("public_url", c.PublicURL),
		slog.Int("trusted_proxies", len(c.TrustedProxies)),
		slog.Bool("scheduler_enabled", c.Scheduler.Enabled),
		slog.String("scheduler_time_zone", c.Scheduler.Location.String()),
		slog.Any("scheduler_schedules", c.Scheduler.Schedules),
	)
}

// String is LogValue as text, for people.
func (c Config) String() string { return c.LogValue().String() }

// redactURL drops the password from a connection URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func databaseFromURI(uri string) string {
	if u, err := url.Parse(uri); err == nil {
		if db := strings.Trim(u.Path, "/"); db != "" {
			return db
		}
	}
	return "fitmate"
}

// parsePublicKey reads a PEM public key. Env files often carry PEM with
// literal \n sequences; those are turned back into newlines.
func parsePublicKey(s string) (crypto.PublicKey, error) {
	s = strings.ReplaceAll(s, `\n`, "\n")
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; at least 2048 are required", k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve.Params().Name != "P-256" {
			return nil, fmt.Errorf("ECDSA curve %s; ES256 needs P-256", k.Curve.Params().Name)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported key type %T (RSA or ECDSA P-256)", key)
	}
}

// loader reads variables and collects problems instead of stopping at the first.
type loader struct {
	getenv   func(string) string
	problems []string
}

func (l *loader) fail(format string, args ...any) {
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

// failed reports whether a problem about a variable with this prefix was recorded.
func (l *loader) failed(prefix string) bool {
	for _, p := range l.problems {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

func (l *loader) intIn(name string, def, lo, hi int) int {
	v := l.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		l.fail("%s=%q: want a whole number from %d to %d", name, v, lo, hi)
		return def
	}
	return n
}

func (l *loader) duration(name string, def time.Duration) time.Duration {
	v := l.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 {
		l.fail("%s=%q: want a duration such as 5s or 250ms", name, v)
		return def
	}
	return d
}

func (l *loader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(l.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	l.fail("%s=%q: want one of %s", name, v, strings.Join(allowed, ", "))
	return def
}

func (l *loader) list(name, def string) []string {
	var out []string
	for _, p := range strings.Split(l.str(name, def), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, strings.ToUpper(p))
		}
	}
	return out
}

func (l *loader) url(name, def string) string {
	v := strings.TrimRight(l.str(name, def), "/")
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		l.fail("%s=%q: want an http(s) URL", name, v)
		return def
	}
	return v
}

// prefixes reads a comma-separated list of CIDR prefixes or single addresses.
func (l *loader) prefixes(name, def string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range strings.Split(l.str(name, def), ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if pr, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pr.Masked())
			continue
		}
		if a, err := netip.ParseAddr(p); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		l.fail("%s: %q is neither an address nor a CIDR prefix", name, p)
	}
	return out
}

func (l *loader) origins(name, def string) []string {
	var out []string
	for _, o := range strings.Split(l.str(name, def), ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "" {
			continue
		}
		if o == "*" {
			l.fail("%s: \"*\" is refused: browsers send credentials, so list the app's origins", name)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			l.fail("%s: %q is not an origin such as https://app.example.com", name, o)
			continue
		}
		out = append(out, o)
	}
	return out
}

func (l *loader) level(name string, def slog.Level) slog.Level {
	v := l.getenv(name)
	if v == "" {
		return def
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(v)); err != nil {
		l.fail("%s=%q: want debug, info, warn or error", name, v)
		return def
	}
	return lv
}
