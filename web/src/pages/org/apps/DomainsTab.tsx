// The app's custom domains: add one, prove it is yours (a DNS TXT record or an HTTP file),
// verify, make it the app's URL, watch its certificate, remove it.
import { useQuery } from "@connectrpc/connect-query";
import { CheckCircle2, Globe, Star } from "lucide-react";
import { useState } from "react";
import { CopyButton } from "../../../components/copy";
import { Confirm } from "../../../components/dialog";
import { Select } from "../../../components/select";
import { toast } from "../../../components/toast";
import { Badge, Banner, Button, Card, CardHeader, EmptyState, ErrorState, Field, Input, SkeletonRows } from "../../../components/ui";
import { DomainService, VerificationMethod, type Domain } from "../../../gen/skypanel/domain/v1/domain_pb";
import { invalidate } from "../../../lib/api";
import { canOperate, certificateStateInfo, domains, methodLabel } from "../../../lib/apps";
import { formatDate, formatDateTime, formatRelative } from "../../../lib/format";
import { useApiForm } from "../../../lib/forms";
import { useOrg } from "../../../lib/org";
import { refreshApp } from "./actions";
import type { TabProps } from "./AppDetail";

const refresh = () => Promise.all([invalidate(DomainService.method.listDomains), refreshApp()]);

function AddDomain({ appId }: { appId: string }) {
  const org = useOrg();
  const [hostname, setHostname] = useState("");
  const [method, setMethod] = useState(String(VerificationMethod.DNS_TXT));
  const form = useApiForm(["hostname", "method"]);
  return (
    <form
      noValidate
      className="space-y-3 p-4 sm:p-5"
      onSubmit={async (e) => {
        e.preventDefault();
        const h = hostname.trim().replace(/^https?:\/\//i, "").replace(/\/.*$/, "");
        if (!h) return form.setFieldError("hostname", "Enter a hostname, e.g. www.example.com.");
        if (h.startsWith("*")) return form.setFieldError("hostname", "Wildcard domains are not supported.");
        const res = await form.run(() => domains.addDomain({ organizationId: org.id, appId, hostname: h, method: Number(method) as VerificationMethod }));
        if (!res) return;
        setHostname("");
        await refresh();
        toast.success(`${res.domain?.hostname ?? h} added`, "Create the record shown, then verify.");
      }}
    >
      {form.formError && <Banner>{form.formError}</Banner>}
      <div className="grid gap-3 sm:grid-cols-[minmax(0,1fr)_14rem_auto] sm:items-start">
        <Field label="Domain" error={form.fields.hostname}>
          {(p) => <Input {...p} value={hostname} onChange={(e) => setHostname(e.target.value)} placeholder="www.example.com" autoComplete="off" spellCheck={false} />}
        </Field>
        <Field label="Verification" error={form.fields.method}>
          {(p) => (
            <Select
              {...p}
              value={method}
              onValueChange={setMethod}
              options={[
                { value: String(VerificationMethod.DNS_TXT), label: methodLabel[VerificationMethod.DNS_TXT], description: "A TXT record in your DNS" },
                { value: String(VerificationMethod.HTTP), label: methodLabel[VerificationMethod.HTTP], description: "When it already points here" },
              ]}
            />
          )}
        </Field>
        <Button type="submit" variant="primary" loading={form.pending} className="sm:mt-[1.625rem]">
          Add domain
        </Button>
      </div>
    </form>
  );
}

function Proof({ d }: { d: Domain }) {
  const http = d.method === VerificationMethod.HTTP;
  return (
    <div className="space-y-2 rounded-md border border-line bg-subtle/50 p-3 text-[13px]" data-proof>
      <p className="text-muted">
        {http
          ? "Serve this text at this address (the domain must already point at the platform):"
          : "Create this TXT record at your DNS provider, then verify. DNS changes can take a few minutes to show."}
      </p>
      <div className="grid gap-2 sm:grid-cols-[max-content_minmax(0,1fr)_auto] sm:items-center">
        <span className="font-medium">{http ? "URL" : "Name"}</span>
        <code className="min-w-0 rounded bg-surface px-2 py-1.5 font-mono text-xs break-all" data-record-name>
          {d.recordName}
        </code>
        <CopyButton text={d.recordName} label={http ? "Copy URL" : "Copy name"} />
        <span className="font-medium">{http ? "Body" : "Value"}</span>
        <code className="min-w-0 rounded bg-surface px-2 py-1.5 font-mono text-xs break-all" data-record-value>
          {d.recordValue}
        </code>
        <CopyButton text={d.recordValue} label={http ? "Copy body" : "Copy value"} />
      </div>
    </div>
  );
}

function DomainRow({ d, may }: { d: Domain; may: boolean }) {
  const org = useOrg();
  const [verifying, setVerifying] = useState(false);
  const [primaryBusy, setPrimaryBusy] = useState(false);
  const cert = certificateStateInfo[d.certificateState];
  return (
    <li className="space-y-3 px-4 py-3.5 sm:px-5" data-domain={d.hostname}>
      <div className="flex flex-col gap-2 sm:flex-row sm:items-center">
        <div className="min-w-0 flex-1">
          <div className="flex flex-wrap items-center gap-2 text-sm font-medium">
            <span className="break-all">{d.hostname}</span>
            {d.verified ? (
              <Badge tone="success">
                <CheckCircle2 className="size-3" aria-hidden /> Verified
              </Badge>
            ) : (
              <Badge tone="warning">Not verified</Badge>
            )}
            {d.primary && (
              <Badge tone="accent">
                <Star className="size-3" aria-hidden /> Primary
              </Badge>
            )}
            {d.verified && <Badge tone={cert.tone}>{cert.label}</Badge>}
          </div>
          <div className="mt-0.5 flex flex-wrap gap-x-2 text-[13px] text-muted">
            <span>{methodLabel[d.method]}</span>
            {d.verifiedAt && (
              <>
                <span aria-hidden>·</span>
                <span title={formatDateTime(d.verifiedAt)}>verified {formatRelative(d.verifiedAt)}</span>
              </>
            )}
            {d.certificateExpiresAt && (
              <>
                <span aria-hidden>·</span>
                <span title={formatDateTime(d.certificateExpiresAt)}>certificate expires {formatDate(d.certificateExpiresAt)}</span>
              </>
            )}
          </div>
        </div>
        {may && (
          <div className="flex shrink-0 flex-wrap items-center gap-2">
            {!d.verified && (
              <Button
                size="sm"
                variant="primary"
                loading={verifying}
                onClick={async () => {
                  setVerifying(true);
                  try {
                    const res = await domains.verifyDomain({ organizationId: org.id, domainId: d.id });
                    await refresh();
                    if (res.domain?.verified) toast.success(`${d.hostname} is verified`, "A certificate is being requested.");
                    else toast.info(`${d.hostname} is not verified yet`, res.domain?.error || "The record was not found. DNS changes can take a few minutes.");
                  } catch (err) {
                    toast.error(`Couldn't verify ${d.hostname}`, err);
                  } finally {
                    setVerifying(false);
                  }
                }}
              >
                Verify
              </Button>
            )}
            {d.verified && !d.primary && (
              <Button
                size="sm"
                loading={primaryBusy}
                onClick={async () => {
                  setPrimaryBusy(true);
                  try {
                    await domains.setPrimaryDomain({ organizationId: org.id, domainId: d.id });
                    await refresh();
                    toast.success(`${d.hostname} is now the app's URL`);
                  } catch (err) {
                    toast.error("Couldn't make it primary", err);
                  } finally {
                    setPrimaryBusy(false);
                  }
                }}
              >
                Make primary
              </Button>
            )}
            <Confirm
              trigger={
                <Button size="sm" aria-label={`Remove ${d.hostname}`}>
                  Remove
                </Button>
              }
              title={`Remove ${d.hostname}?`}
              description={`The app stops answering on ${d.hostname}${d.primary ? ", and its URL goes back to the default address" : ""}. Its certificate is deleted.`}
              confirmLabel="Remove domain"
              onConfirm={async () => {
                try {
                  await domains.removeDomain({ organizationId: org.id, domainId: d.id });
                  await refresh();
                  toast.success(`${d.hostname} removed`);
                } catch (err) {
                  toast.error("Couldn't remove the domain", err);
                  throw err;
                }
              }}
            />
          </div>
        )}
      </div>
      {d.error && <p className="text-[13px] break-words text-danger">{d.error}</p>}
      {!d.verified && <Proof d={d} />}
    </li>
  );
}

export default function DomainsTab({ app }: TabProps) {
  const org = useOrg();
  const may = canOperate(org.role);
  const q = useQuery(DomainService.method.listDomains, { organizationId: org.id, appId: app.id }, { refetchInterval: 10_000 });
  const list = [...(q.data?.domains ?? [])].sort((a, b) => Number(b.primary) - Number(a.primary) || a.hostname.localeCompare(b.hostname));
  return (
    <div className="space-y-6">
      {may && (
        <Card>
          <CardHeader title="Add a domain" description={`Point your own domain at ${app.name}. It answers on ${app.defaultHostname || "its default address"} too.`} />
          <AddDomain appId={app.id} />
        </Card>
      )}
      <Card>
        <CardHeader title="Domains" />
        {q.isPending ? (
          <SkeletonRows rows={2} label="Loading domains" />
        ) : q.isError && !q.data ? (
          <ErrorState error={q.error} onRetry={() => void q.refetch()} />
        ) : list.length === 0 ? (
          <EmptyState icon={<Globe className="size-5" aria-hidden />} title="No custom domains">
            The app answers on {app.defaultHostname || "its default address"}.
          </EmptyState>
        ) : (
          <ul className="divide-y divide-line" aria-label="Domains">
            {list.map((d) => (
              <DomainRow key={d.id} d={d} may={may} />
            ))}
          </ul>
        )}
      </Card>
    </div>
  );
}
