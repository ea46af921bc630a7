// The frame around every signed-in page: a sidebar with the organization switcher and
// navigation (a drawer on narrow screens) and a header with the user menu.
import * as D from "@radix-ui/react-dialog";
import * as M from "@radix-ui/react-dropdown-menu";
import {
  Activity,
  Boxes,
  Building2,
  ChartColumn,
  Check,
  ChevronsUpDown,
  KeyRound,
  LayoutDashboard,
  LogOut,
  Menu,
  Monitor,
  Moon,
  Plus,
  ScrollText,
  Server,
  Settings,
  Shield,
  Sun,
  Tags,
  User as UserIcon,
  Users,
  Wallet,
  X,
} from "lucide-react";
import { useState, type ReactNode } from "react";
import { Link, useLocation } from "wouter";
import type { Organization } from "../gen/skypanel/organization/v1/organization_pb";
import { session, useUser } from "../lib/api";
import { lastOrg, orgPath, useOrganizations } from "../lib/org";
import { can, roleLabel } from "../lib/roles";
import { setTheme, useTheme, type ThemeChoice } from "../lib/theme";
import { Brand } from "./brand";
import { Avatar, Skeleton, cx } from "./ui";

const menuContent = "z-50 min-w-56 rounded-lg border border-line bg-surface p-1 shadow-lg";
const menuItem =
  "flex cursor-default items-center gap-2 rounded-md px-2 py-1.5 text-sm outline-none select-none data-[highlighted]:bg-subtle data-[disabled]:opacity-50";

/** useNavOrg is the organization the sidebar links to: the one in the URL, else the last used. */
function useNavOrg(): { org: Organization | undefined; orgs: Organization[]; loading: boolean } {
  const [location] = useLocation();
  const { data, isPending } = useOrganizations();
  const orgs = data?.organizations ?? [];
  const fromUrl = /^\/o\/([^/]+)/.exec(location)?.[1];
  const slug = fromUrl ? decodeURIComponent(fromUrl) : lastOrg();
  const org = orgs.find((o) => o.slug === slug) ?? (fromUrl ? undefined : orgs[0]);
  return { org, orgs, loading: isPending };
}

function OrgSwitcher({ onNavigate }: { onNavigate: () => void }) {
  const { org, orgs, loading } = useNavOrg();
  const [, navigate] = useLocation();
  if (loading) return <Skeleton className="h-11 w-full rounded-lg" />;
  return (
    <M.Root>
      <M.Trigger
        data-testid="org-switcher"
        className="flex w-full items-center gap-2.5 rounded-lg border border-line bg-surface px-2.5 py-2 text-left shadow-sm hover:bg-subtle"
      >
        {org ? (
          <>
            <Avatar name={org.name} className="size-7 rounded-md" />
            <span className="min-w-0 flex-1">
              <span className="block truncate text-sm font-medium">{org.name}</span>
              <span className="block truncate text-xs text-muted">{roleLabel[org.role]}</span>
            </span>
          </>
        ) : (
          <span className="flex-1 text-sm text-muted">{orgs.length ? "Choose an organization" : "No organization yet"}</span>
        )}
        <ChevronsUpDown className="size-4 shrink-0 text-muted" aria-hidden />
        <span className="sr-only">Switch organization</span>
      </M.Trigger>
      <M.Portal>
        <M.Content align="start" sideOffset={6} className={cx(menuContent, "w-[var(--radix-dropdown-menu-trigger-width)] max-w-[calc(100vw-2rem)]")}>
          {orgs.length > 0 && <M.Label className="px-2 pt-1 pb-1.5 text-xs font-medium text-muted">Organizations</M.Label>}
          {orgs.map((o) => (
            <M.Item
              key={o.id}
              className={menuItem}
              onSelect={() => {
                onNavigate();
                navigate(orgPath(o.slug));
              }}
            >
              <Avatar name={o.name} className="size-6 rounded-md text-[10px]" />
              <span className="min-w-0 flex-1 truncate">{o.name}</span>
              {o.id === org?.id && <Check className="size-4 text-accent" aria-label="current" />}
            </M.Item>
          ))}
          {orgs.length > 0 && <M.Separator className="my-1 h-px bg-line" />}
          <M.Item
            className={menuItem}
            onSelect={() => {
              onNavigate();
              navigate("/new");
            }}
          >
            <Plus className="size-4 text-muted" aria-hidden />
            Create organization
          </M.Item>
        </M.Content>
      </M.Portal>
    </M.Root>
  );
}

function NavLink({
  href,
  icon,
  children,
  exact,
  also = [],
  onNavigate,
}: {
  href: string;
  icon: ReactNode;
  children: ReactNode;
  exact?: boolean;
  /** also lists path prefixes under which the link counts as current too. */
  also?: string[];
  onNavigate: () => void;
}) {
  const [location] = useLocation();
  const active = exact ? location === href : location === href || location.startsWith(href + "/") || also.some((p) => location.startsWith(p));
  return (
    <Link
      href={href}
      onClick={onNavigate}
      aria-current={active ? "page" : undefined}
      className={cx(
        "flex items-center gap-2.5 rounded-md px-2.5 py-1.5 text-sm transition-colors",
        active ? "bg-accent-soft font-medium text-accent" : "text-muted hover:bg-subtle hover:text-fg",
      )}
    >
      <span className="[&>svg]:size-4">{icon}</span>
      {children}
    </Link>
  );
}

function SidebarContent({ onNavigate }: { onNavigate: () => void }) {
  const user = useUser();
  const { org } = useNavOrg();
  return (
    <div className="flex h-full flex-col gap-5 p-3">
      <div className="px-1.5 pt-1">
        <Link href="/" onClick={onNavigate} className="inline-block rounded-md">
          <Brand />
        </Link>
      </div>
      <OrgSwitcher onNavigate={onNavigate} />
      <nav aria-label="Organization" className="space-y-0.5">
        {org ? (
          <>
            <NavLink href={orgPath(org.slug)} exact icon={<LayoutDashboard />} onNavigate={onNavigate}>
              Overview
            </NavLink>
            <NavLink href={orgPath(org.slug, "apps")} icon={<Boxes />} onNavigate={onNavigate}>
              Apps
            </NavLink>
            <NavLink href={orgPath(org.slug, "members")} icon={<Users />} onNavigate={onNavigate}>
              Members
            </NavLink>
            {can.manageTokens(org.role) && (
              <NavLink href={orgPath(org.slug, "tokens")} icon={<KeyRound />} onNavigate={onNavigate}>
                API tokens
              </NavLink>
            )}
            <NavLink href={orgPath(org.slug, "billing")} icon={<Wallet />} onNavigate={onNavigate}>
              Billing
            </NavLink>
            <NavLink href={orgPath(org.slug, "activity")} icon={<Activity />} onNavigate={onNavigate}>
              Activity
            </NavLink>
            <NavLink href={orgPath(org.slug, "settings")} icon={<Settings />} onNavigate={onNavigate}>
              Settings
            </NavLink>
          </>
        ) : (
          <NavLink href="/new" icon={<Plus />} onNavigate={onNavigate}>
            Create organization
          </NavLink>
        )}
      </nav>
      {user.platformAdmin && (
        <nav aria-label="Platform admin" className="space-y-0.5">
          <div className="flex items-center gap-1.5 px-2.5 pb-1 text-xs font-medium tracking-wide text-muted uppercase">
            <Shield className="size-3.5" aria-hidden /> Admin
          </div>
          <NavLink href="/admin/users" icon={<UserIcon />} onNavigate={onNavigate}>
            Users
          </NavLink>
          <NavLink href="/admin/organizations" icon={<Building2 />} onNavigate={onNavigate}>
            Organizations
          </NavLink>
          <NavLink href="/admin/clusters" also={["/admin/nodes/"]} icon={<Server />} onNavigate={onNavigate}>
            Clusters
          </NavLink>
          <NavLink href="/admin/plans" icon={<Tags />} onNavigate={onNavigate}>
            Plans
          </NavLink>
          <NavLink href="/admin/billing" icon={<Wallet />} onNavigate={onNavigate}>
            Billing
          </NavLink>
          <NavLink href="/admin/analytics" icon={<ChartColumn />} onNavigate={onNavigate}>
            Analytics
          </NavLink>
          <NavLink href="/admin/activity" icon={<ScrollText />} onNavigate={onNavigate}>
            Platform activity
          </NavLink>
        </nav>
      )}
    </div>
  );
}

const themes: { value: ThemeChoice; label: string; icon: ReactNode }[] = [
  { value: "light", label: "Light", icon: <Sun className="size-4" aria-hidden /> },
  { value: "dark", label: "Dark", icon: <Moon className="size-4" aria-hidden /> },
  { value: "system", label: "System", icon: <Monitor className="size-4" aria-hidden /> },
];

function UserMenu() {
  const user = useUser();
  const theme = useTheme();
  const [, navigate] = useLocation();
  const name = user.displayName || user.email;
  return (
    <M.Root>
      <M.Trigger data-testid="user-menu" className="flex items-center gap-2 rounded-full p-0.5 pr-2 hover:bg-subtle sm:pr-2.5" aria-label={`Account menu for ${name}`}>
        <Avatar name={name} className="size-7" />
        <span className="hidden max-w-40 truncate text-sm font-medium sm:block">{name}</span>
      </M.Trigger>
      <M.Portal>
        <M.Content align="end" sideOffset={6} className={menuContent}>
          <div className="px-2 py-1.5">
            <div className="truncate text-sm font-medium">{user.displayName || "Signed in"}</div>
            <div className="truncate text-xs text-muted">{user.email}</div>
          </div>
          <M.Separator className="my-1 h-px bg-line" />
          <M.Item className={menuItem} onSelect={() => navigate("/profile")}>
            <UserIcon className="size-4 text-muted" aria-hidden /> Profile
          </M.Item>
          <M.Separator className="my-1 h-px bg-line" />
          <M.Label className="px-2 pt-1 pb-1 text-xs font-medium text-muted">Theme</M.Label>
          <M.RadioGroup value={theme} onValueChange={(v) => setTheme(v as ThemeChoice)}>
            {themes.map((t) => (
              <M.RadioItem key={t.value} value={t.value} className={menuItem}>
                <span className="text-muted">{t.icon}</span>
                <span className="flex-1">{t.label}</span>
                <M.ItemIndicator>
                  <Check className="size-4 text-accent" aria-hidden />
                </M.ItemIndicator>
              </M.RadioItem>
            ))}
          </M.RadioGroup>
          <M.Separator className="my-1 h-px bg-line" />
          <M.Item className={menuItem} onSelect={() => void session.logOut()}>
            <LogOut className="size-4 text-muted" aria-hidden /> Log out
          </M.Item>
        </M.Content>
      </M.Portal>
    </M.Root>
  );
}

export function Shell({ children }: { children: ReactNode }) {
  const [drawer, setDrawer] = useState(false);
  const close = () => setDrawer(false);
  return (
    <div className="min-h-dvh lg:grid lg:grid-cols-[248px_1fr]">
      <a href="#main" className="sr-only z-50 rounded-md bg-surface px-3 py-2 focus:not-sr-only focus:fixed focus:top-2 focus:left-2">
        Skip to content
      </a>
      <aside className="sticky top-0 hidden h-dvh overflow-y-auto border-r border-line bg-surface/60 lg:block">
        <SidebarContent onNavigate={() => {}} />
      </aside>
      <D.Root open={drawer} onOpenChange={setDrawer}>
        <D.Portal>
          <D.Overlay className="fixed inset-0 z-40 bg-black/40 lg:hidden" style={{ animation: "sp-fade-in 120ms ease-out" }} />
          <D.Content
            className="fixed inset-y-0 left-0 z-50 w-[280px] max-w-[85vw] overflow-y-auto border-r border-line bg-surface shadow-xl focus:outline-none lg:hidden"
            style={{ animation: "sp-slide-in 160ms ease-out" }}
          >
            <D.Title className="sr-only">Navigation</D.Title>
            <D.Description className="sr-only">Organization switcher and pages</D.Description>
            <D.Close aria-label="Close navigation" className="absolute top-3.5 right-3 rounded p-1 text-muted hover:bg-subtle hover:text-fg">
              <X className="size-4" aria-hidden />
            </D.Close>
            <SidebarContent onNavigate={close} />
          </D.Content>
        </D.Portal>
      </D.Root>
      <div className="flex min-w-0 flex-col">
        <header className="sticky top-0 z-30 flex h-14 items-center gap-2 border-b border-line bg-bg/85 px-3 backdrop-blur sm:px-6">
          <button
            type="button"
            className="rounded-md p-2 text-muted hover:bg-subtle hover:text-fg lg:hidden"
            aria-label="Open navigation"
            onClick={() => setDrawer(true)}
          >
            <Menu className="size-5" aria-hidden />
          </button>
          <Link href="/" className="rounded-md lg:hidden">
            <Brand />
          </Link>
          <div className="flex-1" />
          <UserMenu />
        </header>
        <main id="main" tabIndex={-1} className="mx-auto w-full max-w-5xl flex-1 px-4 py-6 focus:outline-none sm:px-6 sm:py-8">
          {children}
        </main>
      </div>
    </div>
  );
}
