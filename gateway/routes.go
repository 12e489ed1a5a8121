package gateway

import (
	"net/http"

	commserver "github.com/fitmate/commserver"
	"github.com/gin-gonic/gin"
)

// routes lists the whole REST surface. Who may call each route:
// user = a user's JWT, acting on that user's data; service = X-API-Key or an
// admin's JWT; public = anyone (rate-limited where it costs money).
func (a *api) routes() http.Handler {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(a.observe, a.cors)
	r.NoRoute(func(c *gin.Context) {
		a.writeError(c, commserver.Errorf(commserver.CodeNotFound, "no route %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, errorBody(commserver.Errorf(commserver.CodeInvalid,
			"method %s is not allowed on %s", c.Request.Method, c.Request.URL.Path)))
	})

	// operators
	r.GET("/healthz", a.healthz)
	r.GET("/readyz", a.readyz)
	r.GET("/metrics", gin.WrapH(a.Metrics.Handler()))

	// chat
	r.PUT("/chat/rooms/:roomId", a.service, a.putRoom)
	r.GET("/chat/rooms/:roomId", a.service, a.getRoom)
	r.GET("/chat/rooms/:roomId/messages", a.user, a.roomMessages)
	r.POST("/chat/rooms/:roomId/read", a.user, a.markRoomRead)
	r.DELETE("/chat/messages/:messageId", a.user, a.deleteMessage)
	r.GET("/chat/users", a.user, a.chatUsers)

	// sms
	r.POST("/sms/send", a.service, a.smsSend)
	r.POST("/sms/workout-reminder", a.service, a.smsWorkoutReminder)
	r.POST("/sms/workout-recommendation", a.service, a.smsWorkoutRecommendation)
	r.GET("/sms/statistics", a.service, a.smsStatistics)
	r.POST("/sms/request-otp", a.smsRequestOTP)         // public, rate-limited
	r.POST("/sms/verify-otp", a.smsVerifyOTP)           // public, rate-limited
	r.POST("/sms/status-callback", a.smsStatusCallback) // Twilio, X-Twilio-Signature checked

	// notifications
	r.GET("/notifications", a.user, a.listNotifications)
	r.GET("/notifications/unread-count", a.user, a.unreadNotificationCount)
	r.PATCH("/notifications/read-all", a.user, a.markAllNotificationsRead)
	r.PATCH("/notifications/:id/read", a.user, a.markNotificationRead)
	r.DELETE("/notifications/:id", a.user, a.deleteNotification)
	r.POST("/notifications", a.service, a.createNotification)
	r.POST("/notifications/workout-completed", a.service, a.workoutCompletedNotification)
	r.POST("/notifications/goal-achieved", a.service, a.goalAchievedNotification)
	r.POST("/notifications/workout-reminder", a.service, a.workoutReminderNotification)

	// scheduled jobs and the goals goal-check watches
	r.GET("/admin/jobs", a.service, a.listJobs)
	r.POST("/admin/jobs/:name/run", a.service, a.runJob)
	r.GET("/goals/:userId", a.service, a.listGoals)
	r.PUT("/goals/:userId/:goalId", a.service, a.putGoal)
	r.GET("/goals/:userId/:goalId", a.service, a.getGoal)
	r.DELETE("/goals/:userId/:goalId", a.service, a.deleteGoal)

	return r
}

func (a *api) healthz(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }

// readyz reports 503 while a dependency (the store, Redis) does not answer
// or the server is shutting down, so the load balancer sends no new sockets here.
func (a *api) readyz(c *gin.Context) {
	select {
	case <-a.Hub.draining:
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "shutting down"})
		return
	default:
	}
	if a.Ready != nil {
		if err := a.Ready(c.Request.Context()); err != nil {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "error": commserver.ErrorMessage(err)})
			return
		}
	}
	body := gin.H{"status": "ready", "sockets": a.Hub.Connected()}
	if a.Degraded != nil {
		if d := a.Degraded(); len(d) > 0 {
			body["status"], body["degraded"] = "degraded", d
		}
	}
	c.JSON(http.StatusOK, body)
}
