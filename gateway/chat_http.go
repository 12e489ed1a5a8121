package gateway

import (
	commserver "github.com/fitmate/commserver"
	"github.com/gin-gonic/gin"
)

// putRoom: PUT /chat/rooms/:roomId { members: [userId] } creates the room or replaces its members.
func (a *api) putRoom(c *gin.Context) {
	var body struct {
		Members *[]string `json:"members"`
	}
	if err := decodeJSON(c, &body); err != nil {
		a.writeError(c, err)
		return
	}
	if body.Members == nil {
		a.writeError(c, commserver.Invalid("members", "members is required: an array of user ids"))
		return
	}
	room, err := a.Chat.PutRoom(c.Request.Context(), c.Param("roomId"), *body.Members)
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"room": room})
}

// getRoom: GET /chat/rooms/:roomId returns the room and its members.
func (a *api) getRoom(c *gin.Context) {
	room, err := a.Chat.Room(c.Request.Context(), c.Param("roomId"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"room": room})
}

// roomMessages: GET /chat/rooms/:roomId/messages, by page (?page=&limit=,
// { messages, totalCount }) or by cursor (?before=<messageId>&limit=,
// { messages, hasMore }). Messages are oldest first within the page.
func (a *api) roomMessages(c *gin.Context) {
	p := principalOf(c)
	limit, err := queryInt(c, "limit", 20)
	if err != nil {
		a.writeError(c, err)
		return
	}
	if before, isCursor := c.GetQuery("before"); isCursor {
		if _, both := c.GetQuery("page"); both {
			a.writeError(c, commserver.Invalid("page", "use either page or before, not both"))
			return
		}
		res, err := a.Chat.HistoryBefore(c.Request.Context(), p.Identity, c.Param("roomId"), before, limit)
		if err != nil {
			a.writeError(c, err)
			return
		}
		ok(c, gin.H{"messages": res.Messages, "hasMore": res.HasMore})
		return
	}
	page, err := queryInt(c, "page", 1)
	if err != nil {
		a.writeError(c, err)
		return
	}
	res, err := a.Chat.History(c.Request.Context(), p.Identity, c.Param("roomId"), page, limit)
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"messages": res.Messages, "totalCount": res.TotalCount})
}

// markRoomRead: POST /chat/rooms/:roomId/read adds the caller to readBy of the room's messages.
func (a *api) markRoomRead(c *gin.Context) {
	n, err := a.Chat.MarkRead(c.Request.Context(), principalOf(c).Identity, c.Param("roomId"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"modifiedCount": n})
}

// deleteMessage: DELETE /chat/messages/:messageId soft-deletes (sender or admin).
func (a *api) deleteMessage(c *gin.Context) {
	m, err := a.Chat.Delete(c.Request.Context(), principalOf(c).Identity, c.Param("messageId"))
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"messageId": m.ID, "chatRoomId": m.ChatRoomID})
}

// chatUsers: GET /chat/users is the admins' allChatUsers list.
func (a *api) chatUsers(c *gin.Context) {
	users, err := a.Chat.ChatUsers(c.Request.Context(), principalOf(c).Identity)
	if err != nil {
		a.writeError(c, err)
		return
	}
	ok(c, gin.H{"users": users})
}
