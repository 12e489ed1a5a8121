package gateway

import (
	"context"
	"net/http"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/scheduler"
	"github.com/gin-gonic/gin"
)

// Jobs is the scheduler as the admin routes see it (package scheduler).
type Jobs interface {
	// Status lists the jobs with their schedules and last runs.
	Status(ctx context.Context) []scheduler.JobStatus
	// Trigger starts a run now and returns its id. Errors: ErrNotFound for
	// an unknown job, ErrConflict while it runs, ErrUnavailable when the
	// scheduler or its lock is unavailable.
	Trigger(ctx context.Context, name string) (string, error)
}

var _ Jobs = (*scheduler.Scheduler)(nil)

var jobsUnavailable = commserver.Errorf(commserver.CodeUnavailable, "the scheduler is not running on this server")

// listJobs: GET /admin/jobs answers { jobs: [{ name, schedule, timeZone,
// enabled, running, nextRun, lastRun, lastSkipped }] }.
func (a *api) listJobs(c *gin.Context) {
	if a.Jobs == nil {
		a.writeError(c, jobsUnavailable)
		return
	}
	ok(c, gin.H{"jobs": a.Jobs.Status(c.Request.Context())})
}

// runJob: POST /admin/jobs/:name/run starts a run now: 202 { runId, job },
// 404 for an unknown job, 409 while it runs (here or on another instance).
func (a *api) runJob(c *gin.Context) {
	if a.Jobs == nil {
		a.writeError(c, jobsUnavailable)
		return
	}
	name := c.Param("name")
	id, err := a.Jobs.Trigger(c.Request.Context(), name)
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"success": true, "runId": id, "job": name})
}
