package sms

import (
	"fmt"
	"strings"
	"time"
)

// OTPMask replaces the code in what is stored and logged of an OTP message.
const OTPMask = "●●●●●●"

// The seed's texts (sms.service.ts), byte for byte.

func workoutReminderText(userName, workoutType, appURL string) string {
	return "안녕하세요 " + userName + "님! 🏃♂️\n\n오늘 " + workoutType +
		" 운동 시간입니다.\nFitMate와 함께 건강한 하루 시작하세요!\n\n앱에서 확인: " + appURL
}

func workoutRecommendationText(userName string, exercises []string, appURL string) string {
	return userName + "님을 위한 오늘의 추천 운동 💪\n\n" + strings.Join(exercises, ", ") +
		"\n\n지금 시작해보세요!\nFitMate 앱: " + appURL
}

// otpText is the seed's OTP text; its "5분" follows the configured lifetime.
func otpText(code string, ttl time.Duration) string {
	return fmt.Sprintf("FitMate 인증번호: %s\n\n%d분 내에 입력해주세요.\n타인에게 알리지 마세요.", code, max(1, int(ttl/time.Minute)))
}

// notificationText is ours: the seed only logged offline notifications.
func notificationText(title, body, appURL string) string {
	return "[FitMate] " + title + "\n\n" + body + "\n\n앱에서 확인: " + appURL
}
