// The organization the dashboard is looking at: named by the URL (/o/<slug>/...), looked up in
// the caller's organizations, and remembered so "/" returns to it.
import { useQuery } from "@connectrpc/connect-query";
import { createContext, useContext } from "react";
import { OrganizationService, type Organization } from "../gen/skypanel/organization/v1/organization_pb";

const lastKey = "skypanel.org";

export function rememberOrg(slug: string) {
  localStorage.setItem(lastKey, slug);
}

export function lastOrg(): string | null {
  return localStorage.getItem(lastKey);
}

export function useOrganizations() {
  return useQuery(OrganizationService.method.listOrganizations, {});
}

export const OrgContext = createContext<Organization | null>(null);

/** useOrg is the current organization; only for pages under /o/<slug>/. */
export function useOrg(): Organization {
  const org = useContext(OrgContext);
  if (!org) throw new Error("useOrg outside an organization");
  return org;
}

export function orgPath(slug: string, section = "") {
  return `/o/${encodeURIComponent(slug)}${section ? "/" + section : ""}`;
}
