package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

const secret = "0123456789abcdef0123456789abcdef" // 32 bytes

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func pemOf(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"JWT_SECRET": secret}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 3000 || c.ChatRoomPolicy != RoomPolicyMembers || c.MaxMessageLength != 4000 ||
		c.MaxPayloadBytes != 1_000_000 || c.DataDir != "./data" || c.MongoDB != "fitmate" ||
		c.JWTUserClaim != "sub" || c.StoreTimeout != 5*time.Second || c.SMSDefaultRegion != "KR" ||
		c.RecoveryWindow != 2*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	if len(c.CORSOrigins) != 1 || c.CORSOrigins[0] != "http://localhost:5173" {
		t.Fatalf("CORS default: %v", c.CORSOrigins)
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	_, err := Load(env(map[string]string{
		"JWT_SECRET":       "short",
		"PORT":             "http",
		"CHAT_ROOM_POLICY": "everyone",
		"CORS_ORIGIN":      "*,example.com",
		"STORE_TIMEOUT":    "soon",
		"SERVICE_API_KEY":  "abc",
		"MONGODB_URI":      "postgres://x",
		"PRESENCE_GRACE":   "soon",
		"PRESENCE_POD_TTL": "1s",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"JWT_SECRET is 5 bytes", "PORT=", "CHAT_ROOM_POLICY=", `"*" is refused`,
		`"example.com" is not an origin`, "STORE_TIMEOUT=", "SERVICE_API_KEY is 3 bytes", "MONGODB_URI must",
		"PRESENCE_GRACE=", "PRESENCE_POD_TTL=1s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "required: without one") {
		t.Errorf("a short secret also reported as missing: %v", err)
	}
}

func TestLoadTable(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	smallRSA, _ := rsa.GenerateKey(rand.Reader, 1024)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tests := []loadCase{
		{"no key at all", map[string]string{}, "JWT_SECRET or JWT_PUBLIC_KEY is required", nil},
		{"31-byte secret", map[string]string{"JWT_SECRET": secret[:31]}, "at least 32", nil},
		{"RSA public key", map[string]string{"JWT_PUBLIC_KEY": pemOf(t, &rsaKey.PublicKey)}, "", func(t *testing.T, c Config) {
			if _, ok := c.JWTPublicKey.(*rsa.PublicKey); !ok {
				t.Errorf("key %T", c.JWTPublicKey)
			}
		}},
		{"PEM with escaped newlines", map[string]string{"JWT_PUBLIC_KEY": strings.ReplaceAll(pemOf(t, &ecKey.PublicKey), "\n", `\n`)}, "", func(t *testing.T, c Config) {
			if _, ok := c.JWTPublicKey.(*ecdsa.PublicKey); !ok {
				t.Errorf("key %T", c.JWTPublicKey)
			}
		}},
		{"1024-bit RSA", map[string]string{"JWT_PUBLIC_KEY": pemOf(t, &smallRSA.PublicKey)}, "at least 2048", nil},
		{"P-384", map[string]string{"JWT_PUBLIC_KEY": pemOf(t, &p384.PublicKey)}, "needs P-256", nil},
		{"garbage PEM", map[string]string{"JWT_PUBLIC_KEY": "hello"}, "not a PEM block", nil},
		{"origins trimmed", map[string]string{"JWT_SECRET": secret, "CORS_ORIGIN": " https://a.example.com/ ,http://localhost:5173"}, "", func(t *testing.T, c Config) {
			if strings.Join(c.CORSOrigins, "|") != "https://a.example.com|http://localhost:5173" {
				t.Errorf("origins %v", c.CORSOrigins)
			}
		}},
		{"database from URI", map[string]string{"JWT_SECRET": secret, "MONGODB_URI": "mongodb://u:p@db:27017/fitness?authSource=admin"}, "", func(t *testing.T, c Config) {
			if c.MongoDB != "fitness" {
				t.Errorf("db %q", c.MongoDB)
			}
		}},
		{"open policy", map[string]string{"JWT_SECRET": secret, "CHAT_ROOM_POLICY": "OPEN"}, "", func(t *testing.T, c Config) {
			if c.ChatRoomPolicy != RoomPolicyOpen {
				t.Errorf("policy %q", c.ChatRoomPolicy)
			}
		}},
		{"bad log level", map[string]string{"JWT_SECRET": secret, "LOG_LEVEL": "loud"}, "LOG_LEVEL", nil},
		{"drain longer than shutdown", map[string]string{"JWT_SECRET": secret, "SHUTDOWN_TIMEOUT": "1s", "SHUTDOWN_DRAIN_DELAY": "2s"}, "SHUTDOWN_TIMEOUT must be longer", nil},
		{"redis scheme", map[string]string{"JWT_SECRET": secret, "REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL must", nil},
		{"twilio base URL", map[string]string{"JWT_SECRET": secret, "TWILIO_API_BASE_URL": "localhost:4010"}, "TWILIO_API_BASE_URL", nil},
		{"issuer, audience and user claim", map[string]string{"JWT_SECRET": secret, "JWT_ISSUER": "fitmate-api",
			"JWT_AUDIENCE": "fitmate-app", "JWT_USER_CLAIM": "memberId"}, "", func(t *testing.T, c Config) {
			if c.JWTIssuer != "fitmate-api" || c.JWTAudience != "fitmate-app" || c.JWTUserClaim != "memberId" {
				t.Errorf("jwt claims config %q %q %q", c.JWTIssuer, c.JWTAudience, c.JWTUserClaim)
			}
		}},
		{"secret and public key together", map[string]string{"JWT_SECRET": secret, "JWT_PUBLIC_KEY": pemOf(t, &rsaKey.PublicKey)}, "", func(t *testing.T, c Config) {
			if c.JWTSecret == nil || c.JWTPublicKey == nil {
				t.Errorf("both keys wanted: %v %T", c.JWTSecret != nil, c.JWTPublicKey)
			}
		}},
		{"PKCS#1 RSA key", map[string]string{"JWT_PUBLIC_KEY": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY",
			Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}))}, "", func(t *testing.T, c Config) {
			if _, ok := c.JWTPublicKey.(*rsa.PublicKey); !ok {
				t.Errorf("key %T", c.JWTPublicKey)
			}
		}},
		{"private key instead of public", map[string]string{"JWT_PUBLIC_KEY": string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
			Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))}, "is not a public key", nil},
		{"token cap too small", map[string]string{"JWT_SECRET": secret, "JWT_MAX_BYTES": "100"}, "JWT_MAX_BYTES", nil},
		{"limits", map[string]string{"JWT_SECRET": secret, "CHAT_MAX_MESSAGE_LENGTH": "500", "SOCKET_MAX_PAYLOAD_BYTES": "2048",
			"SOCKET_EVENTS_PER_MINUTE": "30", "SOCKET_EVENT_BURST": "3", "CHAT_MAX_ROOM_ID_LENGTH": "32"}, "", func(t *testing.T, c Config) {
			if c.MaxMessageLength != 500 || c.MaxPayloadBytes != 2048 || c.EventsPerMinute != 30 || c.EventBurst != 3 || c.MaxRoomIDLength != 32 {
				t.Errorf("limits %+v", c)
			}
		}},
		{"message length 0", map[string]string{"JWT_SECRET": secret, "CHAT_MAX_MESSAGE_LENGTH": "0"}, "CHAT_MAX_MESSAGE_LENGTH", nil},
		{"payload cap below 1 KB", map[string]string{"JWT_SECRET": secret, "SOCKET_MAX_PAYLOAD_BYTES": "100"}, "SOCKET_MAX_PAYLOAD_BYTES", nil},
		{"store timeout 0", map[string]string{"JWT_SECRET": secret, "STORE_TIMEOUT": "0s"}, "STORE_TIMEOUT must be positive", nil},
		{"body timeout 0", map[string]string{"JWT_SECRET": secret, "HTTP_READ_TIMEOUT": "0s"}, "HTTP_READ_TIMEOUT, HTTP_WRITE_TIMEOUT and HTTP_IDLE_TIMEOUT must be positive", nil},
		{"http timeouts", map[string]string{"JWT_SECRET": secret, "HTTP_READ_TIMEOUT": "3s", "HTTP_WRITE_TIMEOUT": "7s"}, "", func(t *testing.T, c Config) {
			if c.HTTPReadTimeout != 3*time.Second || c.HTTPWriteTimeout != 7*time.Second || c.HTTPIdleTimeout != 2*time.Minute {
				t.Errorf("HTTP timeouts %v %v %v", c.HTTPReadTimeout, c.HTTPWriteTimeout, c.HTTPIdleTimeout)
			}
		}},
		{"negative duration", map[string]string{"JWT_SECRET": secret, "SOCKET_PING_INTERVAL": "-1s"}, "SOCKET_PING_INTERVAL", nil},
		{"short store timeout", map[string]string{"JWT_SECRET": secret, "STORE_TIMEOUT": "1s"}, "", func(t *testing.T, c Config) {
			if c.StoreTimeout != time.Second {
				t.Errorf("STORE_TIMEOUT %v", c.StoreTimeout)
			}
		}},
		{"origin with a path", map[string]string{"JWT_SECRET": secret, "CORS_ORIGIN": "https://app.example.com/chat"}, "is not an origin", nil},
		{"cluster defaults", map[string]string{"JWT_SECRET": secret}, "", func(t *testing.T, c Config) {
			if c.PresenceGrace != 5*time.Second || c.PresencePodTTL != 15*time.Second ||
				c.ClusterRedisPrefix != "fitmate:cluster:" || c.ClusterRedisTimeout != time.Second {
				t.Errorf("cluster defaults %v %v %q %v", c.PresenceGrace, c.PresencePodTTL, c.ClusterRedisPrefix, c.ClusterRedisTimeout)
			}
		}},
		{"cluster settings", map[string]string{"JWT_SECRET": secret, "PRESENCE_GRACE": "0s", "PRESENCE_POD_TTL": "30s",
			"CLUSTER_REDIS_PREFIX": "blue:", "CLUSTER_REDIS_TIMEOUT": "250ms"}, "", func(t *testing.T, c Config) {
			if c.PresenceGrace != 0 || c.PresencePodTTL != 30*time.Second || c.ClusterRedisPrefix != "blue:" || c.ClusterRedisTimeout != 250*time.Millisecond {
				t.Errorf("cluster settings %v %v %q %v", c.PresenceGrace, c.PresencePodTTL, c.ClusterRedisPrefix, c.ClusterRedisTimeout)
			}
		}},
		{"grace too long", map[string]string{"JWT_SECRET": secret, "PRESENCE_GRACE": "1h"}, "PRESENCE_GRACE=1h0m0s: want at most 5m", nil},
		{"pod TTL too short", map[string]string{"JWT_SECRET": secret, "PRESENCE_POD_TTL": "1s"}, "PRESENCE_POD_TTL=1s: want from 3s", nil},
		{"redis timeout over the lease renewal", map[string]string{"JWT_SECRET": secret, "PRESENCE_POD_TTL": "3s",
			"CLUSTER_REDIS_TIMEOUT": "1500ms"}, "must be at most a third of PRESENCE_POD_TTL", nil},
		{"prefix with a hash tag", map[string]string{"JWT_SECRET": secret, "CLUSTER_REDIS_PREFIX": "{fitmate}:"}, "CLUSTER_REDIS_PREFIX", nil},
		{"embedded store by default", map[string]string{"JWT_SECRET": secret, "DATA_DIR": "/var/lib/commserver"}, "", func(t *testing.T, c Config) {
			if c.MongoURI != "" || c.DataDir != "/var/lib/commserver" {
				t.Errorf("store config %q %q", c.MongoURI, c.DataDir)
			}
		}},
	}
	runLoadCases(t, tests)
}

func TestSecretsNeverPrinted(t *testing.T) {
	c, err := Load(env(map[string]string{
		"JWT_SECRET":        secret,
		"SERVICE_API_KEY":   "service-key-0123456789",
		"TWILIO_AUTH_TOKEN": "twilio-token-xyz",
		"MONGODB_URI":       "mongodb://user:mongo-password@db/fitmate",
		"REDIS_URL":         "redis://:redis-password@cache:6379",
	}))
	if err != nil {
		t.Fatal(err)
	}
	out := c.String()
	for _, s := range []string{secret, "service-key-0123456789", "twilio-token-xyz", "mongo-password", "redis-password"} {
		if strings.Contains(out, s) {
			t.Errorf("printed config contains secret %q: %s", s, out)
		}
	}
}

func TestLoadSMSDefaults(t *testing.T) {
	c, err := Load(env(map[string]string{"JWT_SECRET": secret}))
	if err != nil {
		t.Fatal(err)
	}
	if c.OTPTTL != 5*time.Minute || c.OTPMaxAttempts != 5 || c.OTPResendCooldown != time.Minute ||
		c.OTPDailyLimit != 10 || c.OTPIPRequests != 20 || c.OTPIPVerifies != 60 || c.OTPIPWindow != 10*time.Minute ||
		c.OTPGlobalHourlyLimit != 1000 || c.SMSNumberDailyLimit != 20 || c.SMSNotifyHourlyLimit != 3 ||
		c.TwilioTimeout != 10*time.Second || c.TwilioMaxRetries != 3 || c.SMSRedisPrefix != "fitmate:sms:" ||
		c.SMSSender != "twilio" || strings.Join(c.SMSAllowedCountries, ",") != "KR" {
		t.Fatalf("SMS defaults: %+v", c)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[0].String() != "127.0.0.0/8" || c.TrustedProxies[1].String() != "::1/128" {
		t.Fatalf("TRUSTED_PROXIES default: %v", c.TrustedProxies)
	}
	// The pepper is derived from JWT_SECRET: the same on every instance, not the secret itself.
	again, _ := Load(env(map[string]string{"JWT_SECRET": secret}))
	if len(c.OTPPepper) != 32 || string(c.OTPPepper) != string(again.OTPPepper) || string(c.OTPPepper) == secret {
		t.Fatalf("derived pepper %x", c.OTPPepper)
	}
	other, _ := Load(env(map[string]string{"JWT_SECRET": secret[1:] + "x"}))
	if string(other.OTPPepper) == string(c.OTPPepper) {
		t.Fatal("two secrets derive one pepper")
	}
}

func TestLoadSMSTable(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pepper := "otp-pepper-0123456789abcdef012345"
	tests := []loadCase{
		{"explicit pepper", map[string]string{"JWT_SECRET": secret, "OTP_PEPPER": pepper}, "", func(t *testing.T, c Config) {
			if string(c.OTPPepper) != pepper {
				t.Errorf("pepper %q", c.OTPPepper)
			}
		}},
		{"short pepper", map[string]string{"JWT_SECRET": secret, "OTP_PEPPER": "short"}, "OTP_PEPPER is 5 bytes", nil},
		{"Redis with neither pepper nor secret", map[string]string{"JWT_PUBLIC_KEY": pemOf(t, &ecKey.PublicKey),
			"REDIS_URL": "redis://127.0.0.1:6379"}, "OTP_PEPPER is required", nil},
		{"no Redis, no secret: no pepper needed", map[string]string{"JWT_PUBLIC_KEY": pemOf(t, &ecKey.PublicKey)}, "", func(t *testing.T, c Config) {
			if c.OTPPepper != nil {
				t.Errorf("pepper %x", c.OTPPepper)
			}
		}},
		{"account SID typo", map[string]string{"JWT_SECRET": secret, "TWILIO_ACCOUNT_SID": "AC123"}, "TWILIO_ACCOUNT_SID must be", nil},
		{"messaging service SID typo", map[string]string{"JWT_SECRET": secret, "TWILIO_MESSAGING_SERVICE_SID": "PN0123456789abcdef0123456789abcdef"}, "TWILIO_MESSAGING_SERVICE_SID must be", nil},
		{"public URL", map[string]string{"JWT_SECRET": secret, "PUBLIC_URL": "https://comm.example.com/"}, "", func(t *testing.T, c Config) {
			if c.PublicURL != "https://comm.example.com" {
				t.Errorf("PUBLIC_URL %q", c.PublicURL)
			}
		}},
		{"public URL without scheme", map[string]string{"JWT_SECRET": secret, "PUBLIC_URL": "comm.example.com"}, "PUBLIC_URL=", nil},
		{"trusted proxies", map[string]string{"JWT_SECRET": secret, "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7 ,fd00::/8"}, "", func(t *testing.T, c Config) {
			var got []string
			for _, p := range c.TrustedProxies {
				got = append(got, p.String())
			}
			if strings.Join(got, "|") != "10.0.0.0/8|192.168.1.7/32|fd00::/8" {
				t.Errorf("proxies %v", got)
			}
		}},
		{"bad trusted proxy", map[string]string{"JWT_SECRET": secret, "TRUSTED_PROXIES": "nginx"}, `"nginx" is neither`, nil},
		{"OTP TTL too short", map[string]string{"JWT_SECRET": secret, "OTP_TTL": "1s"}, "OTP_TTL=1s", nil},
		{"countries", map[string]string{"JWT_SECRET": secret, "SMS_ALLOWED_COUNTRIES": "kr, jp"}, "", func(t *testing.T, c Config) {
			if strings.Join(c.SMSAllowedCountries, ",") != "KR,JP" {
				t.Errorf("countries %v", c.SMSAllowedCountries)
			}
		}},
		{"no global OTP cap", map[string]string{"JWT_SECRET": secret, "OTP_GLOBAL_HOURLY_LIMIT": "0"}, "", func(t *testing.T, c Config) {
			if c.OTPGlobalHourlyLimit != 0 {
				t.Errorf("cap %d", c.OTPGlobalHourlyLimit)
			}
		}},
		{"sender", map[string]string{"JWT_SECRET": secret, "SMS_SENDER": "carrier-pigeon"}, "SMS_SENDER=", nil},
	}
	runLoadCases(t, tests)
}

func TestOTPPepperNeverPrinted(t *testing.T) {
	pepper := "otp-pepper-0123456789abcdef012345"
	c, err := Load(env(map[string]string{"JWT_SECRET": secret, "OTP_PEPPER": pepper,
		"TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef", "TWILIO_AUTH_TOKEN": "twilio-token-xyz"}))
	if err != nil {
		t.Fatal(err)
	}
	if out := c.String(); strings.Contains(out, pepper) || strings.Contains(out, "twilio-token-xyz") {
		t.Fatalf("printed config holds a secret: %s", out)
	}
}

// loadCase is one environment and what Load must make of it: an error
// containing wantErr, or a Config that check accepts.
type loadCase struct {
	name    string
	env     map[string]string
	wantErr string
	check   func(*testing.T, Config)
}

func runLoadCases(t *testing.T, tests []loadCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
