package gateway

import (
	"github.com/fitmate/commserver/goals"
	"github.com/gin-gonic/gin"
)

// The goals routes (service): the main backend registers the goals that
// goal-check watches.

// putGoal: PUT /goals/:userId/:goalId { name, metric, target, period }
// creates or replaces the goal: { goal, created }.
func (a *api) putGoal(c *gin.Context) {
	var in goals.Input
	if err := decodeJSON(c, &in); err != nil {
		a.writeError(c, err)
		return
	}
	g, created, err := a.Goals.Put(c.Request.Context(), c.Param("userId"), c.Param("goalId"), in)
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"goal": g, "created": created})
}

// getGoal: GET /goals/:userId/:goalId answers { goal }.
func (a *api) getGoal(c *gin.Context) {
	g, err := a.Goals.Get(c.Request.Context(), c.Param("userId"), c.Param("goalId"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"goal": g})
}

// deleteGoal: DELETE /goals/:userId/:goalId answers { goalId }.
func (a *api) deleteGoal(c *gin.Context) {
	if err := a.Goals.Delete(c.Request.Context(), c.Param("userId"), c.Param("goalId")); err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"goalId": c.Param("goalId")})
}

// listGoals: GET /goals/:userId answers { goals }.
func (a *api) listGoals(c *gin.Context) {
	gs, err := a.Goals.List(c.Request.Context(), c.Param("userId"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"goals": gs})
}
