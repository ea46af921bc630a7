// The centred card around sign-up, log-in and the pages reached from emailed links.
import type { ReactNode } from "react";
import { Link } from "wouter";
import { Brand } from "./brand";
import { useTitle } from "./ui";

export function AuthLayout({ title, subtitle, children, footer }: { title: ReactNode; subtitle?: ReactNode; children: ReactNode; footer?: ReactNode }) {
  useTitle(title);
  return (
    <main className="flex min-h-dvh flex-col items-center justify-center px-4 py-10">
      <Link href="/" className="mb-8 rounded-md">
        <Brand />
      </Link>
      <div className="w-full max-w-[400px] rounded-xl border border-line bg-surface p-6 shadow-sm sm:p-8">
        <h1 className="text-lg font-semibold tracking-tight">{title}</h1>
        {subtitle && <p className="mt-1 text-sm text-muted">{subtitle}</p>}
        <div className="mt-6">{children}</div>
      </div>
      {footer && <div className="mt-6 text-center text-sm text-muted">{footer}</div>}
    </main>
  );
}
