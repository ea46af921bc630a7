// The app's environment variables. Secrets show as dots (the API never returns them); one
// left untouched is sent back with keep. Saving replaces the spec and deploys a new release.
// Export downloads the variables as a .env file (without secret values).
import { Download, Save } from "lucide-react";
import { useEffect, useRef, useState } from "react";
import { EnvEditor } from "../../../components/env-editor";
import { toast } from "../../../components/toast";
import { Banner, Button, Card, CardHeader } from "../../../components/ui";
import { apps, canOperate, checkRows, download, envErrors, envFromRows, rowsFromEnv, specForUpdate, type EnvRow } from "../../../lib/apps";
import { useApiForm } from "../../../lib/forms";
import { useOrg } from "../../../lib/org";
import { refreshApp } from "./actions";
import type { TabProps } from "./AppDetail";

const sig = (rows: EnvRow[]) => JSON.stringify(rows.map((r) => [r.name, r.value, r.secret, r.stored, r.replacing]));

export default function EnvironmentTab({ app }: TabProps) {
  const org = useOrg();
  const may = canOperate(org.role);
  const [rows, setRows] = useState<EnvRow[]>(() => rowsFromEnv(app.spec?.env ?? []));
  const base = useRef(sig(rows));
  const [exporting, setExporting] = useState(false);
  const form = useApiForm((k) => /^spec\.env\[\d+\]/.test(k));
  const [localErrors, setLocalErrors] = useState<Record<string, string>>({});
  const dirty = sig(rows) !== base.current;

  // The app refreshes every few seconds: take its variables when they changed elsewhere and
  // nothing is being edited here.
  const serverSig = JSON.stringify(app.spec?.env.map((e) => [e.name, e.value, e.secret, e.hasValue]) ?? []);
  useEffect(() => {
    if (dirty) return;
    const next = rowsFromEnv(app.spec?.env ?? []);
    base.current = sig(next);
    setRows(next);
  }, [serverSig]);

  const { index } = envFromRows(rows);
  const errors = { ...envErrors(form.fields, index), ...localErrors };

  async function save() {
    const problems = checkRows(rows);
    setLocalErrors(problems);
    if (Object.keys(problems).length) return;
    const { env } = envFromRows(rows);
    const res = await form.run(() => apps.updateApp({ organizationId: org.id, appId: app.id, spec: { ...specForUpdate(app.spec), env } }));
    if (!res) return;
    const next = rowsFromEnv(res.app?.spec?.env ?? []);
    base.current = sig(next);
    setRows(next);
    await refreshApp();
    toast.success("Environment saved", res.deployment ? `Deploying release ${res.deployment.releaseVersion}…` : undefined);
  }

  async function exportEnv() {
    setExporting(true);
    try {
      const res = await apps.exportDotenv({ organizationId: org.id, appId: app.id });
      download(`${app.name}.env`, res.content);
    } catch (err) {
      toast.error("Couldn't export the variables", err);
    } finally {
      setExporting(false);
    }
  }

  return (
    <Card>
      <CardHeader
        title="Environment variables"
        description="Saving deploys a new release with them. Secret values are encrypted and never shown again."
        actions={
          <Button size="sm" icon={<Download className="size-3.5" aria-hidden />} loading={exporting} onClick={() => void exportEnv()}>
            Export .env
          </Button>
        }
      />
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <div className="space-y-4 p-4 sm:p-5">
          {form.formError && <Banner>{form.formError}</Banner>}
          {!may && <Banner tone="accent">Viewers see the variables but can't change them.</Banner>}
          <EnvEditor
            rows={rows}
            onChange={(r) => {
              setRows(r);
              setLocalErrors({});
            }}
            errors={errors}
            organizationId={org.id}
            disabled={!may}
          />
        </div>
        {may && (
          <div className="flex flex-col-reverse gap-2 border-t border-line px-4 py-3 sm:flex-row sm:items-center sm:justify-end sm:px-5">
            {dirty && <span className="text-[13px] text-muted sm:mr-auto">Unsaved changes</span>}
            <Button
              disabled={!dirty || form.pending}
              onClick={() => {
                const next = rowsFromEnv(app.spec?.env ?? []);
                base.current = sig(next);
                setRows(next);
                setLocalErrors({});
                form.reset();
              }}
            >
              Discard
            </Button>
            <Button type="submit" variant="primary" loading={form.pending} disabled={!dirty} icon={<Save className="size-4" aria-hidden />}>
              Save and deploy
            </Button>
          </div>
        )}
      </form>
    </Card>
  );
}
