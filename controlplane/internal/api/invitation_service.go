package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"skypanel/controlplane/internal/auth"
	"skypanel/controlplane/internal/mail"
	"skypanel/controlplane/internal/store"
	orgv1 "skypanel/shared/gen/go/skypanel/organization/v1"
	"skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"
)

const (
	// maxPendingInvitations is how many pending invitations one organization may have.
	maxPendingInvitations = 50
	// maxListedInvitations bounds ListInvitations, which the schema does not paginate yet.
	maxListedInvitations = 500
)

// errInvitationNotFound answers for unknown and malformed tokens alike, so a guess learns
// nothing about which tokens exist.
var errInvitationNotFound = connect.NewError(connect.CodeNotFound, errors.New("invitation not found"))

// InvitationService implements organizationv1connect.InvitationServiceHandler.
//
// Invitations are addressed by id within an organization (for its admins) or by the emailed
// token (for the invitee); only the token's SHA-256 is stored.
type InvitationService struct {
	organizationv1connect.UnimplementedInvitationServiceHandler
	opts Options
}

// CreateInvitation invites an email address into the organization with a role and queues the
// mail with the link in the same transaction, so a refused or failed invitation sends nothing.
func (s *InvitationService) CreateInvitation(ctx context.Context, req *connect.Request[orgv1.CreateInvitationRequest]) (*connect.Response[orgv1.CreateInvitationResponse], error) {
	p := mustPrincipal(ctx)
	email := store.NormalizeEmail(req.Msg.GetEmail())
	role := store.Role(req.Msg.GetRole())
	if role < store.RoleViewer || role > store.RoleAdmin {
		return nil, auth.FieldError("role", "must be viewer, member or admin")
	}
	if role == store.RoleAdmin && p.OrgRole != store.RoleOwner {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("only the owner can invite admins"))
	}
	secret, hash := auth.NewToken(auth.KindInvitation)
	var inv store.Invitation
	err := s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		// The organization's row lock serialises invitations to it, so the limit holds.
		org, err := q.LockOrganization(ctx, p.OrgID)
		if err != nil {
			return storeErr("organization", err)
		}
		if _, err := q.ExpireInvitations(ctx, p.OrgID); err != nil {
			return storeErr("invitations", err)
		}
		if _, err := q.MemberByEmail(ctx, p.OrgID, email); err == nil {
			return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("email: %s is already a member", email))
		} else if !errors.Is(err, store.ErrNotFound) {
			return storeErr("member", err)
		}
		pending, err := q.HasPendingInvitation(ctx, p.OrgID, email)
		if err != nil {
			return storeErr("invitation", err)
		}
		if pending {
			return errAlreadyInvited(email)
		}
		n, err := q.CountPendingInvitations(ctx, p.OrgID)
		if err != nil {
			return storeErr("invitations", err)
		}
		if n >= maxPendingInvitations {
			return failedPrecondition("the organization has %d pending invitations, the most allowed: revoke some first", n)
		}
		inv, err = q.CreateInvitation(ctx, store.NewInvitation{
			OrganizationID: p.OrgID, Email: email, Role: role, TokenHash: hash, InvitedBy: p.UserID,
			ExpiresAt: time.Now().Add(s.opts.InvitationTTL),
		})
		if errors.Is(err, store.ErrConflict) {
			return errAlreadyInvited(email)
		} else if err != nil {
			return storeErr("invitation", err)
		}
		if _, err := q.InsertActivity(ctx, event(ctx, p.OrgID, "invitation.created", "invitation", inv.ID.String(),
			map[string]string{"email": email, "role": role.String()})); err != nil {
			return err
		}
		return s.opts.Mail.Enqueue(ctx, q.Tx(), invitationMail(s.opts.PublicURL, p.Email, org.Name, inv, secret))
	})
	if err != nil {
		return nil, storeErr("invitation", err)
	}
	return connect.NewResponse(&orgv1.CreateInvitationResponse{Invitation: invitationMessage(inv)}), nil
}

func errAlreadyInvited(email string) error {
	return connect.NewError(connect.CodeAlreadyExists, fmt.Errorf("email: %s already has a pending invitation", email))
}

// invitationMail is the invitation email. The link is on a line of its own so that mail
// clients (and tests) can pick it out.
func invitationMail(publicURL, inviter, orgName string, inv store.Invitation, secret string) mail.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "%s invited you to join %s on SkyPanel as %s %s.\n\n", inviter, orgName, article(inv.Role), inv.Role)
	fmt.Fprintf(&b, "To accept or decline, open:\n\n%s/invitations/accept?token=%s\n\n", publicURL, secret)
	fmt.Fprintf(&b, "The link works until %s. If you did not expect this invitation, ignore this email.\n",
		inv.ExpiresAt.UTC().Format("Mon, 2 Jan 2006 15:04 MST"))
	return mail.Message{
		To:      inv.Email,
		Subject: fmt.Sprintf("%s invited you to %s on SkyPanel", inviter, orgName),
		Text:    b.String(),
	}
}

func article(r store.Role) string {
	if r == store.RoleAdmin {
		return "an"
	}
	return "a"
}

// ListInvitations lists the organization's invitations, newest first. Pending invitations past
// their expiry are listed as expired.
func (s *InvitationService) ListInvitations(ctx context.Context, _ *connect.Request[orgv1.ListInvitationsRequest]) (*connect.Response[orgv1.ListInvitationsResponse], error) {
	p := mustPrincipal(ctx)
	invs, err := s.opts.Store.ListInvitations(ctx, p.OrgID, maxListedInvitations)
	if err != nil {
		return nil, storeErr("invitations", err)
	}
	resp := &orgv1.ListInvitationsResponse{}
	for _, inv := range invs {
		resp.Invitations = append(resp.Invitations, invitationMessage(inv))
	}
	return connect.NewResponse(resp), nil
}

// RevokeInvitation withdraws a pending invitation; its link stops working.
func (s *InvitationService) RevokeInvitation(ctx context.Context, req *connect.Request[orgv1.RevokeInvitationRequest]) (*connect.Response[orgv1.RevokeInvitationResponse], error) {
	p := mustPrincipal(ctx)
	id, err := uuid.Parse(req.Msg.GetInvitationId())
	if err != nil {
		return nil, auth.FieldError("invitation_id", "must be a UUID")
	}
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		inv, err := q.LockInvitationByID(ctx, p.OrgID, id)
		if err != nil {
			return storeErr("invitation", err)
		}
		if inv.State != store.InvitationPending {
			return failedPrecondition("invitation is %s: only pending invitations can be revoked", inv.State)
		}
		if err := q.RespondToInvitation(ctx, p.OrgID, id, store.InvitationRevoked, &p.UserID); err != nil {
			return storeErr("invitation", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, p.OrgID, "invitation.revoked", "invitation", id.String(),
			map[string]string{"email": inv.Email, "role": inv.Role.String()}))
		return err
	})
	if err != nil {
		return nil, storeErr("invitation", err)
	}
	return connect.NewResponse(&orgv1.RevokeInvitationResponse{}), nil
}

// GetInvitation shows the invitation to whoever holds its link, whatever its state, so the
// accept page can say who invited them where, or that the link is used up.
func (s *InvitationService) GetInvitation(ctx context.Context, req *connect.Request[orgv1.GetInvitationRequest]) (*connect.Response[orgv1.GetInvitationResponse], error) {
	hash, err := auth.ParseToken(auth.KindInvitation, req.Msg.GetToken())
	if err != nil {
		return nil, errInvitationNotFound
	}
	inv, err := s.opts.Store.InvitationByToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvitationNotFound
	} else if err != nil {
		return nil, storeErr("invitation", err)
	}
	return connect.NewResponse(&orgv1.GetInvitationResponse{Invitation: invitationMessage(inv)}), nil
}

// AcceptInvitation makes the signed-in caller a member with the invited role. The caller's
// email must be the one invited: the link alone, forwarded or leaked, admits nobody else.
func (s *InvitationService) AcceptInvitation(ctx context.Context, req *connect.Request[orgv1.AcceptInvitationRequest]) (*connect.Response[orgv1.AcceptInvitationResponse], error) {
	p := mustPrincipal(ctx)
	hash, err := auth.ParseToken(auth.KindInvitation, req.Msg.GetToken())
	if err != nil {
		return nil, errInvitationNotFound
	}
	var org store.MemberOrganization
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		inv, err := lockPendingInvitation(ctx, q, hash)
		if err != nil {
			return err
		}
		if store.NormalizeEmail(p.Email) != inv.Email {
			return connect.NewError(connect.CodePermissionDenied, errors.New("this invitation was sent to another email address"))
		}
		if err := q.RespondToInvitation(ctx, inv.OrganizationID, inv.ID, store.InvitationAccepted, &p.UserID); err != nil {
			return storeErr("invitation", err)
		}
		// Someone who is already a member (say, added through another invitation since) gets
		// success with the membership they have: the invitation is used up, and their role is
		// not changed by an older or newer offer, which only an admin may decide.
		current, err := q.MembershipRole(ctx, inv.OrganizationID, p.UserID)
		alreadyMember := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return storeErr("membership", err)
		}
		meta := map[string]string{"email": inv.Email, "user_id": p.UserID.String(), "role": inv.Role.String()}
		if alreadyMember {
			meta["already_member"], meta["current_role"] = "true", current.String()
		}
		if _, err := q.InsertActivity(ctx, event(ctx, inv.OrganizationID, "invitation.accepted", "invitation", inv.ID.String(), meta)); err != nil {
			return err
		}
		if !alreadyMember {
			// The join is recorded as a member event too, so the organization's member history
			// reads the same whichever way people arrive.
			if err := q.AddMember(ctx, inv.OrganizationID, p.UserID, inv.Role); err != nil {
				return storeErr("membership", err)
			}
			if _, err := q.InsertActivity(ctx, event(ctx, inv.OrganizationID, "organization.member.joined", "member", p.UserID.String(),
				map[string]string{"user_id": p.UserID.String(), "email": inv.Email, "role": inv.Role.String(), "invitation_id": inv.ID.String()})); err != nil {
				return err
			}
		}
		org, err = q.OrganizationOfUser(ctx, inv.OrganizationID, p.UserID)
		return storeErr("organization", err)
	})
	if err != nil {
		return nil, storeErr("invitation", err)
	}
	return connect.NewResponse(&orgv1.AcceptInvitationResponse{Organization: organizationMessage(org, org.Role)}), nil
}

// DeclineInvitation turns the invitation down for whoever holds its link.
func (s *InvitationService) DeclineInvitation(ctx context.Context, req *connect.Request[orgv1.DeclineInvitationRequest]) (*connect.Response[orgv1.DeclineInvitationResponse], error) {
	hash, err := auth.ParseToken(auth.KindInvitation, req.Msg.GetToken())
	if err != nil {
		return nil, errInvitationNotFound
	}
	err = s.opts.Store.InTx(ctx, func(q *store.Queries) error {
		inv, err := lockPendingInvitation(ctx, q, hash)
		if err != nil {
			return err
		}
		// A public RPC: the link holder is anonymous, so nobody is recorded as responder.
		if err := q.RespondToInvitation(ctx, inv.OrganizationID, inv.ID, store.InvitationDeclined, nil); err != nil {
			return storeErr("invitation", err)
		}
		_, err = q.InsertActivity(ctx, event(ctx, inv.OrganizationID, "invitation.declined", "invitation", inv.ID.String(),
			map[string]string{"email": inv.Email, "role": inv.Role.String()}))
		return err
	})
	if err != nil {
		return nil, storeErr("invitation", err)
	}
	return connect.NewResponse(&orgv1.DeclineInvitationResponse{}), nil
}

// lockPendingInvitation finds and locks the invitation a token hash belongs to, and refuses
// one that can no longer be answered.
func lockPendingInvitation(ctx context.Context, q *store.Queries, hash []byte) (store.Invitation, error) {
	inv, err := q.LockInvitationByToken(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return inv, errInvitationNotFound
	} else if err != nil {
		return inv, storeErr("invitation", err)
	}
	switch inv.State {
	case store.InvitationPending:
		return inv, nil
	case store.InvitationExpired:
		return inv, failedPrecondition("invitation expired")
	}
	return inv, failedPrecondition("invitation was already %s", inv.State)
}

func invitationMessage(inv store.Invitation) *orgv1.Invitation {
	return &orgv1.Invitation{
		Id: inv.ID.String(), OrganizationId: inv.OrganizationID.String(), OrganizationName: inv.OrganizationName,
		Email: inv.Email, Role: orgv1.Role(inv.Role), State: invitationStateMessage(inv.State),
		InvitedByEmail: inv.InvitedByEmail, CreatedAt: ts(inv.CreatedAt), ExpiresAt: ts(inv.ExpiresAt),
	}
}

func invitationStateMessage(s store.InvitationState) orgv1.InvitationState {
	switch s {
	case store.InvitationPending:
		return orgv1.InvitationState_INVITATION_STATE_PENDING
	case store.InvitationAccepted:
		return orgv1.InvitationState_INVITATION_STATE_ACCEPTED
	case store.InvitationDeclined:
		return orgv1.InvitationState_INVITATION_STATE_DECLINED
	case store.InvitationRevoked:
		return orgv1.InvitationState_INVITATION_STATE_REVOKED
	case store.InvitationExpired:
		return orgv1.InvitationState_INVITATION_STATE_EXPIRED
	}
	return orgv1.InvitationState_INVITATION_STATE_UNSPECIFIED
}
