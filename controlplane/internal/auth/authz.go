package auth

import (
	"skypanel/controlplane/internal/store"
	"skypanel/shared/gen/go/skypanel/activity/v1/activityv1connect"
	"skypanel/shared/gen/go/skypanel/admin/v1/adminv1connect"
	"skypanel/shared/gen/go/skypanel/agent/v1/agentv1connect"
	"skypanel/shared/gen/go/skypanel/apitoken/v1/apitokenv1connect"
	"skypanel/shared/gen/go/skypanel/app/v1/appv1connect"
	"skypanel/shared/gen/go/skypanel/auth/v1/authv1connect"
	"skypanel/shared/gen/go/skypanel/billing/v1/billingv1connect"
	"skypanel/shared/gen/go/skypanel/cluster/v1/clusterv1connect"
	"skypanel/shared/gen/go/skypanel/domain/v1/domainv1connect"
	"skypanel/shared/gen/go/skypanel/organization/v1/organizationv1connect"
	"skypanel/shared/gen/go/skypanel/plan/v1/planv1connect"
)

// Access is the kind of caller an RPC admits.
type Access int

// Access kinds.
const (
	// Public RPCs need no credentials (sign-up, log-in, links from emails).
	Public Access = iota + 1
	// SignedIn RPCs need any authenticated caller; they act on the caller's own account.
	SignedIn
	// OrgRole RPCs name an organization in the request's organization_id field and need at
	// least Rule.Role in it.
	OrgRole
	// PlatformAdmin RPCs need a platform admin's session.
	PlatformAdmin
	// Node RPCs need a node certificate issued by the platform CA, not revoked, of a node that
	// is not removed. They are served on the agent listener only.
	Node
)

// Rule is what one RPC requires.
type Rule struct {
	Access Access
	// Role is the lowest organization role admitted, for OrgRole rules.
	Role store.Role
	// SessionOnly refuses API tokens: things a script should never do on a person's behalf
	// (change a password, make more tokens, leave an organization).
	SessionOnly bool
}

var (
	public      = Rule{Access: Public}
	signedIn    = Rule{Access: SignedIn, SessionOnly: true}
	anyCaller   = Rule{Access: SignedIn}
	platform    = Rule{Access: PlatformAdmin, SessionOnly: true}
	node        = Rule{Access: Node}
	orgViewer   = Rule{Access: OrgRole, Role: store.RoleViewer}
	orgMember   = Rule{Access: OrgRole, Role: store.RoleMember}
	orgAdmin    = Rule{Access: OrgRole, Role: store.RoleAdmin}
	orgOwner    = Rule{Access: OrgRole, Role: store.RoleOwner, SessionOnly: true}
	sessionOnly = func(r Rule) Rule { r.SessionOnly = true; return r }
)

// rules is the authorization table: every RPC the control plane serves, and what it needs.
// An RPC missing here is refused at run time, and fails the authorization test that walks
// every RPC of the schema.
var rules = map[string]Rule{
	authv1connect.AuthServiceSignUpProcedure:               public,
	authv1connect.AuthServiceLogInProcedure:                public,
	authv1connect.AuthServiceRefreshProcedure:              public,
	authv1connect.AuthServiceRequestPasswordResetProcedure: public,
	authv1connect.AuthServiceResetPasswordProcedure:        public,
	authv1connect.AuthServiceLogOutProcedure:               signedIn,
	authv1connect.AuthServiceWhoAmIProcedure:               anyCaller,
	authv1connect.AuthServiceChangePasswordProcedure:       signedIn,

	organizationv1connect.OrganizationServiceCreateOrganizationProcedure: signedIn,
	organizationv1connect.OrganizationServiceListOrganizationsProcedure:  signedIn,
	organizationv1connect.OrganizationServiceGetOrganizationProcedure:    orgViewer,
	organizationv1connect.OrganizationServiceListMembersProcedure:        orgViewer,
	organizationv1connect.OrganizationServiceLeaveOrganizationProcedure:  sessionOnly(orgViewer),
	organizationv1connect.OrganizationServiceRenameOrganizationProcedure: orgAdmin,
	organizationv1connect.OrganizationServiceChangeMemberRoleProcedure:   orgAdmin,
	organizationv1connect.OrganizationServiceRemoveMemberProcedure:       orgAdmin,
	organizationv1connect.OrganizationServiceDeleteOrganizationProcedure: orgOwner,
	organizationv1connect.OrganizationServiceTransferOwnershipProcedure:  orgOwner,

	organizationv1connect.InvitationServiceGetInvitationProcedure:     public,
	organizationv1connect.InvitationServiceDeclineInvitationProcedure: public,
	organizationv1connect.InvitationServiceAcceptInvitationProcedure:  signedIn,
	organizationv1connect.InvitationServiceListInvitationsProcedure:   orgViewer,
	organizationv1connect.InvitationServiceCreateInvitationProcedure:  orgAdmin,
	organizationv1connect.InvitationServiceRevokeInvitationProcedure:  orgAdmin,

	apitokenv1connect.APITokenServiceListAPITokensProcedure:  orgAdmin,
	apitokenv1connect.APITokenServiceRevokeAPITokenProcedure: orgAdmin,
	apitokenv1connect.APITokenServiceCreateAPITokenProcedure: sessionOnly(orgAdmin),

	activityv1connect.ActivityServiceListActivityProcedure:   orgViewer,
	activityv1connect.ActivityServiceStreamActivityProcedure: orgViewer,

	adminv1connect.AdminServiceListUsersProcedure:         platform,
	adminv1connect.AdminServiceListOrganizationsProcedure: platform,
	adminv1connect.AdminServiceSetUserDisabledProcedure:   platform,
	adminv1connect.AdminServiceSetPlatformAdminProcedure:  platform,
	adminv1connect.AdminServiceListActivityProcedure:      platform,

	clusterv1connect.ClusterServiceCreateClusterProcedure:         platform,
	clusterv1connect.ClusterServiceListClustersProcedure:          platform,
	clusterv1connect.ClusterServiceGetClusterProcedure:            platform,
	clusterv1connect.ClusterServiceDeleteClusterProcedure:         platform,
	clusterv1connect.ClusterServiceCreateEnrollmentTokenProcedure: platform,
	clusterv1connect.ClusterServiceListEnrollmentTokensProcedure:  platform,
	clusterv1connect.ClusterServiceRevokeEnrollmentTokenProcedure: platform,
	clusterv1connect.ClusterServiceListNodesProcedure:             platform,
	clusterv1connect.ClusterServiceGetNodeProcedure:               platform,
	clusterv1connect.ClusterServiceWatchNodesProcedure:            platform,
	clusterv1connect.ClusterServiceDrainNodeProcedure:             platform,
	clusterv1connect.ClusterServiceActivateNodeProcedure:          platform,
	clusterv1connect.ClusterServiceSetNodeLabelsProcedure:         platform,
	clusterv1connect.ClusterServiceRemoveNodeProcedure:            platform,
	clusterv1connect.ClusterServiceGetNodeMetricsProcedure:        platform,

	// The agent listener's RPCs. Enroll is authenticated by the enrollment token it carries.
	agentv1connect.AgentServiceEnrollProcedure:          public,
	agentv1connect.AgentServiceRenewProcedure:           node,
	agentv1connect.AgentServiceConnectProcedure:         node,
	agentv1connect.AgentServiceAckProcedure:             node,
	agentv1connect.AgentServiceReportProcedure:          node,
	agentv1connect.AgentServiceReportWorkloadsProcedure: node,
	agentv1connect.AgentServicePushLogsProcedure:        node,

	// Plans: everyone signed in may see them; platform admins manage them.
	planv1connect.PlanServiceListPlansProcedure:  anyCaller,
	planv1connect.PlanServiceCreatePlanProcedure: platform,
	planv1connect.PlanServiceUpdatePlanProcedure: platform,
	planv1connect.PlanServiceRetirePlanProcedure: platform,

	// Apps: viewers read, members deploy and operate, admins delete.
	appv1connect.AppServiceListAppsProcedure:        orgViewer,
	appv1connect.AppServiceGetAppProcedure:          orgViewer,
	appv1connect.AppServiceListReleasesProcedure:    orgViewer,
	appv1connect.AppServiceListDeploymentsProcedure: orgViewer,
	appv1connect.AppServiceGetDeploymentProcedure:   orgViewer,
	appv1connect.AppServiceWatchDeploymentProcedure: orgViewer,
	appv1connect.AppServiceListReplicasProcedure:    orgViewer,
	appv1connect.AppServiceStreamLogsProcedure:      orgViewer,
	appv1connect.AppServiceGetAppMetricsProcedure:   orgViewer,
	appv1connect.AppServiceParseDotenvProcedure:     orgViewer,
	appv1connect.AppServiceExportDotenvProcedure:    orgViewer,
	appv1connect.AppServiceCreateAppProcedure:       orgMember,
	appv1connect.AppServiceUpdateAppProcedure:       orgMember,
	appv1connect.AppServiceScaleAppProcedure:        orgMember,
	appv1connect.AppServiceRestartAppProcedure:      orgMember,
	appv1connect.AppServiceStopAppProcedure:         orgMember,
	appv1connect.AppServiceStartAppProcedure:        orgMember,
	appv1connect.AppServiceRedeployProcedure:        orgMember,
	appv1connect.AppServiceRollbackProcedure:        orgMember,
	appv1connect.AppServiceDeleteAppProcedure:       orgAdmin,

	// Billing: the organization's admins see its money; platform admins credit and adjust.
	billingv1connect.BillingServiceGetWalletProcedure:        orgViewer,
	billingv1connect.BillingServiceListTransactionsProcedure: orgAdmin,
	billingv1connect.BillingServiceListUsageProcedure:        orgViewer,
	billingv1connect.BillingServiceCreditWalletProcedure:     platform,
	billingv1connect.BillingServiceAdjustWalletProcedure:     platform,
	billingv1connect.BillingServiceSetAppPriceProcedure:      platform,
	billingv1connect.BillingServiceListAppPricesProcedure:    orgAdmin,
	// Admins pay and set the warning; everyone in it sees usage; invoices are the admins'.
	billingv1connect.BillingServiceSetLowBalanceThresholdProcedure: orgAdmin,
	billingv1connect.BillingServiceCreateTopUpProcedure:            orgAdmin,
	billingv1connect.BillingServiceListTopUpsProcedure:             orgAdmin,
	billingv1connect.BillingServiceGetUsageReportProcedure:         orgViewer,
	billingv1connect.BillingServiceExportUsageProcedure:            orgViewer,
	billingv1connect.BillingServiceListInvoicesProcedure:           orgAdmin,
	billingv1connect.BillingServiceGetInvoiceProcedure:             orgAdmin,
	billingv1connect.BillingServiceDownloadInvoiceProcedure:        orgAdmin,
	billingv1connect.BillingServiceSuspendOrganizationProcedure:    platform,
	billingv1connect.BillingServiceResumeOrganizationProcedure:     platform,
	billingv1connect.BillingServiceListWalletsProcedure:            platform,
	billingv1connect.BillingServiceGetAnalyticsProcedure:           platform,
	billingv1connect.BillingServiceRunMeteringProcedure:            platform,

	// Domains: as apps.
	domainv1connect.DomainServiceListDomainsProcedure:      orgViewer,
	domainv1connect.DomainServiceAddDomainProcedure:        orgMember,
	domainv1connect.DomainServiceVerifyDomainProcedure:     orgMember,
	domainv1connect.DomainServiceSetPrimaryDomainProcedure: orgMember,
	domainv1connect.DomainServiceRemoveDomainProcedure:     orgMember,
}

// RuleFor returns the rule for a procedure ("/package.Service/Method").
func RuleFor(procedure string) (Rule, bool) {
	r, ok := rules[procedure]
	return r, ok
}
