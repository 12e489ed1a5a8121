package store

import (
	"context"
	"errors"
	"time"

	commserver "github.com/fitmate/commserver"
	"github.com/fitmate/commserver/goals"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// colGoals holds the main backend's goals (ours: the NestJS server had none).
// _id is "userId/goalId" (user ids hold no '/'), so every goal write is an
// _id write.
const colGoals = "goals"

var _ goals.Store = (*DB)(nil)

type goalDoc struct {
	ID        string    `bson:"_id"`
	UserID    any       `bson:"userId"`
	GoalID    string    `bson:"goalId"`
	Name      string    `bson:"name"`
	Metric    string    `bson:"metric"`
	Target    float64   `bson:"target"`
	Period    string    `bson:"period"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

func goalKey(userID, goalID string) string { return userID + "/" + goalID }

func (g goalDoc) goal() goals.Goal {
	return goals.Goal{UserID: idString(g.UserID), GoalID: g.GoalID, Name: g.Name, Metric: goals.Metric(g.Metric),
		Target: g.Target, Period: goals.Period(g.Period), CreatedAt: commserver.JSTime(g.CreatedAt.UTC()),
		UpdatedAt: commserver.JSTime(g.UpdatedAt.UTC())}
}

func goalNotFound(userID, goalID string) error {
	return &commserver.Error{Code: commserver.CodeNotFound, Field: "goalId", Message: "user " + userID + " has no goal " + goalID}
}

// PutGoal upserts the goal, keeping createdAt when it existed.
func (d *DB) PutGoal(ctx context.Context, g goals.Goal) (goals.Goal, bool, error) {
	now := ms(time.Time(g.UpdatedAt))
	var before goalDoc
	err := d.upsert(ctx, "put goal", func(ctx context.Context) error {
		return d.db.Collection(colGoals).FindOneAndUpdate(ctx, bson.M{"_id": goalKey(g.UserID, g.GoalID)},
			bson.M{"$set": bson.M{"userId": idValue(g.UserID), "goalId": g.GoalID, "name": g.Name, "metric": string(g.Metric),
				"target": g.Target, "period": string(g.Period), "updatedAt": now},
				"$setOnInsert": bson.M{"createdAt": now}},
			options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.Before)).Decode(&before)
	})
	created := errors.Is(err, mongo.ErrNoDocuments)
	if err != nil && !created {
		return goals.Goal{}, false, err
	}
	g.UpdatedAt, g.CreatedAt = commserver.JSTime(now), commserver.JSTime(now)
	if !created {
		g.CreatedAt = commserver.JSTime(before.CreatedAt.UTC())
	}
	return g, created, nil
}

// Goal returns one goal.
func (d *DB) Goal(ctx context.Context, userID, goalID string) (goals.Goal, error) {
	var doc goalDoc
	err := d.call(ctx, "find goal", func(ctx context.Context) error {
		return d.db.Collection(colGoals).FindOne(ctx, bson.M{"_id": goalKey(userID, goalID)}).Decode(&doc)
	})
	if errors.Is(err, mongo.ErrNoDocuments) {
		return goals.Goal{}, goalNotFound(userID, goalID)
	}
	if err != nil {
		return goals.Goal{}, err
	}
	return doc.goal(), nil
}

// DeleteGoal deletes one goal.
func (d *DB) DeleteGoal(ctx context.Context, userID, goalID string) error {
	var n int64
	err := d.call(ctx, "delete goal", func(ctx context.Context) error {
		res, err := d.db.Collection(colGoals).DeleteOne(ctx, bson.M{"_id": goalKey(userID, goalID)})
		if err == nil {
			n = res.DeletedCount
		}
		return err
	})
	if err == nil && n == 0 {
		return goalNotFound(userID, goalID)
	}
	return err
}

// UserGoals returns the user's goals by goal id.
func (d *DB) UserGoals(ctx context.Context, userID string) ([]goals.Goal, error) {
	return d.findGoals(ctx, "find user goals", bson.M{"userId": idValue(userID)})
}

// AllGoals returns every goal (for goal-check).
func (d *DB) AllGoals(ctx context.Context) ([]goals.Goal, error) {
	var out []goals.Goal
	after := ""
	for {
		f := bson.M{}
		if after != "" {
			f["_id"] = bson.M{"$gt": after}
		}
		page, err := d.findGoalDocs(ctx, "find goals", f, pageSize)
		if err != nil {
			return nil, err
		}
		for _, doc := range page {
			out = append(out, doc.goal())
		}
		if len(page) < pageSize {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}

func (d *DB) findGoals(ctx context.Context, op string, filter bson.M) ([]goals.Goal, error) {
	docs, err := d.findGoalDocs(ctx, op, filter, 0)
	if err != nil {
		return nil, err
	}
	out := make([]goals.Goal, len(docs))
	for i, doc := range docs {
		out[i] = doc.goal()
	}
	return out, nil
}

func (d *DB) findGoalDocs(ctx context.Context, op string, filter bson.M, limit int64) ([]goalDoc, error) {
	var docs []goalDoc
	err := d.all(ctx, op, &docs, func(ctx context.Context) (*mongo.Cursor, error) {
		return d.db.Collection(colGoals).Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(limit))
	})
	return docs, err
}
