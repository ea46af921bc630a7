// The app's settings: its plan (changing it deploys a new release at the new size) and
// deleting it, confirmed by typing its name.
import { useQuery } from "@connectrpc/connect-query";
import { useState } from "react";
import { useLocation } from "wouter";
import { Confirm } from "../../../components/dialog";
import { toast } from "../../../components/toast";
import { Banner, Button, Card, CardHeader, ErrorState, Input, SkeletonRows } from "../../../components/ui";
import { AppService } from "../../../gen/skypanel/app/v1/app_pb";
import { PlanService } from "../../../gen/skypanel/plan/v1/plan_pb";
import { invalidate } from "../../../lib/api";
import { apps, canOperate, specForUpdate } from "../../../lib/apps";
import { useApiForm } from "../../../lib/forms";
import { orgPath, useOrg } from "../../../lib/org";
import { refreshApp } from "./actions";
import type { TabProps } from "./AppDetail";
import { PlanPicker } from "./app-ui";

function ChangePlan({ app }: TabProps) {
  const org = useOrg();
  const q = useQuery(PlanService.method.listPlans, { includeRetired: false });
  const [planId, setPlanId] = useState(app.planId);
  const form = useApiForm((k) => k === "plan_id");
  const list = (q.data?.plans ?? []).filter((p) => !p.retired || p.id === app.planId);
  const current = list.find((p) => p.id === app.planId);
  const chosen = list.find((p) => p.id === planId);
  const tooMany = chosen && (app.spec?.replicas ?? 0) > chosen.maxReplicas;

  return (
    <Card>
      <CardHeader title="Plan" description="The size of each replica and its price. Changing it deploys a new release." />
      <form
        noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          const res = await form.run(() => apps.updateApp({ organizationId: org.id, appId: app.id, spec: specForUpdate(app.spec), planId }));
          if (!res) return;
          await refreshApp();
          toast.success(`${app.name} moves to ${chosen?.name ?? "the new plan"}`, res.deployment ? `Deploying release ${res.deployment.releaseVersion}…` : undefined);
        }}
      >
        <div className="space-y-4 p-4 sm:p-5">
          {form.formError && <Banner>{form.formError}</Banner>}
          {q.isPending ? (
            <SkeletonRows rows={2} label="Loading plans" />
          ) : q.isError ? (
            <ErrorState error={q.error} onRetry={() => void q.refetch()} title="Couldn't load the plans" />
          ) : (
            <>
              {!current && <Banner tone="warning">The app's current plan is retired: it keeps running, but can't be chosen again once changed.</Banner>}
              <PlanPicker plans={list} value={planId} onChange={setPlanId} error={form.fields.plan_id} />
              {tooMany && (
                <Banner tone="warning">
                  {chosen.name} allows at most {chosen.maxReplicas} replicas; the app has {app.spec?.replicas}. Scale it down first.
                </Banner>
              )}
            </>
          )}
        </div>
        {canOperate(org.role) && (
          <div className="flex justify-end border-t border-line px-4 py-3 sm:px-5">
            <Button type="submit" variant="primary" loading={form.pending} disabled={planId === app.planId || !chosen || !!tooMany}>
              Change plan
            </Button>
          </div>
        )}
      </form>
    </Card>
  );
}

function Delete({ app }: TabProps) {
  const org = useOrg();
  const [, navigate] = useLocation();
  const [typed, setTyped] = useState("");
  return (
    <Card className="border-danger/40">
      <CardHeader title="Danger zone" />
      <div className="flex flex-col gap-3 p-4 sm:flex-row sm:items-center sm:p-5">
        <div className="min-w-0 flex-1">
          <h3 className="text-sm font-medium">Delete app</h3>
          <p className="text-[13px] text-muted">Stops every replica and removes the app, its domains and certificates. This can't be undone.</p>
        </div>
        <Confirm
          trigger={<Button variant="danger">Delete app</Button>}
          title={`Delete ${app.name}?`}
          description={
            <>
              Its replicas stop, and its URL, domains, releases and secrets are deleted. Type <strong className="font-mono text-fg">{app.name}</strong> to confirm.
            </>
          }
          confirmLabel="Delete forever"
          confirmDisabled={typed !== app.name}
          onConfirm={async () => {
            try {
              await apps.deleteApp({ organizationId: org.id, appId: app.id });
              await invalidate(AppService.method.listApps);
              toast.success(`${app.name} is being deleted`);
              navigate(orgPath(org.slug, "apps"), { replace: true });
            } catch (err) {
              toast.error("Couldn't delete the app", err);
              throw err;
            }
          }}
        >
          <Input aria-label="App name" autoComplete="off" placeholder={app.name} value={typed} onChange={(e) => setTyped(e.target.value)} className="font-mono" data-testid="confirm-name" />
        </Confirm>
      </div>
    </Card>
  );
}

export default function SettingsTab({ app }: TabProps) {
  const org = useOrg();
  return (
    <div className="space-y-6">
      <ChangePlan app={app} />
      {canOperate(org.role) && <Delete app={app} />}
    </div>
  );
}
