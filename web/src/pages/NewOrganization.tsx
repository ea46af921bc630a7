import { Card, PageHeader } from "../components/ui";
import { CreateOrgForm } from "./CreateOrgForm";

export default function NewOrganization() {
  return (
    <div className="mx-auto max-w-lg">
      <PageHeader title="Create an organization" description="You will be its owner. Invite others once it exists." />
      <Card className="p-5 sm:p-6">
        <CreateOrgForm autoFocus />
      </Card>
    </div>
  );
}
