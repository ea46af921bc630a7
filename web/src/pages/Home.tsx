// "/": open the organization used last, or welcome a newcomer with the first step.
import { Building2 } from "lucide-react";
import { Redirect } from "wouter";
import { Card, ErrorState, Spinner, useTitle } from "../components/ui";
import { useUser } from "../lib/api";
import { lastOrg, orgPath, useOrganizations } from "../lib/org";
import { CreateOrgForm } from "./CreateOrgForm";

export default function Home() {
  const user = useUser();
  const q = useOrganizations();
  useTitle("Welcome");
  if (q.isPending) return <Spinner />;
  if (q.isError) return <ErrorState error={q.error} onRetry={() => void q.refetch()} />;
  const list = q.data.organizations;
  if (list.length) {
    const last = lastOrg();
    const org = list.find((o) => o.slug === last) ?? list[0];
    return <Redirect to={orgPath(org.slug)} replace />;
  }
  return (
    <div className="mx-auto max-w-lg pt-4 sm:pt-10">
      <div className="mb-6 text-center">
        <div className="mx-auto mb-4 grid size-12 place-items-center rounded-full bg-accent-soft text-accent">
          <Building2 className="size-6" aria-hidden />
        </div>
        <h1 className="text-xl font-semibold tracking-tight">Welcome{user.displayName ? `, ${user.displayName}` : ""}!</h1>
        <p className="mt-1 text-sm text-muted">
          Start by creating an organization. It holds your apps, your team and its API tokens. If someone invited you, open the link in
          their email instead.
        </p>
      </div>
      <Card className="p-5 sm:p-6">
        <CreateOrgForm autoFocus />
      </Card>
    </div>
  );
}
