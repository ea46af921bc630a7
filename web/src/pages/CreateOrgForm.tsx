import { createClient } from "@connectrpc/connect";
import { createConnectQueryKey } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { useLocation } from "wouter";
import { toast } from "../components/toast";
import { Banner, Button, Field, Input } from "../components/ui";
import { OrganizationService } from "../gen/skypanel/organization/v1/organization_pb";
import { transport } from "../lib/api";
import { useApiForm } from "../lib/forms";
import { orgPath, rememberOrg } from "../lib/org";

const orgs = createClient(OrganizationService, transport);

/** CreateOrgForm creates an organization (the caller owns it) and opens it. */
export function CreateOrgForm({ autoFocus }: { autoFocus?: boolean }) {
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [showSlug, setShowSlug] = useState(false);
  const [, navigate] = useLocation();
  const qc = useQueryClient();
  const form = useApiForm(["name", "slug"]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const res = await form.run(() => orgs.createOrganization({ name: name.trim(), slug: slug.trim() }));
    const org = res?.organization;
    if (!org) return;
    await qc.invalidateQueries({ queryKey: createConnectQueryKey({ schema: OrganizationService.method.listOrganizations, cardinality: undefined }) });
    rememberOrg(org.slug);
    toast.success(`${org.name} is ready`, "Invite your team next.");
    navigate(orgPath(org.slug));
  }

  return (
    <form onSubmit={submit} noValidate className="space-y-4">
      {form.formError && <Banner>{form.formError}</Banner>}
      <Field label="Organization name" hint="Your company or team. You can rename it later." error={form.fields.name}>
        {(p) => <Input {...p} autoFocus={autoFocus} placeholder="Acme Robotics" value={name} onChange={(e) => setName(e.target.value)} />}
      </Field>
      {showSlug || form.fields.slug ? (
        <Field label="Short name" hint="Lowercase letters, digits and dashes; used in addresses. It can't change later." error={form.fields.slug}>
          {(p) => <Input {...p} placeholder="acme-robotics" value={slug} onChange={(e) => setSlug(e.target.value.toLowerCase())} />}
        </Field>
      ) : (
        <button type="button" className="block rounded text-[13px] text-accent hover:underline" onClick={() => setShowSlug(true)}>
          Choose the short name yourself
        </button>
      )}
      <div className="pt-1">
        <Button type="submit" variant="primary" loading={form.pending} className="w-full sm:w-auto">
          Create organization
        </Button>
      </div>
    </form>
  );
}
