export function Logo({ className = "size-7" }: { className?: string }) {
  return (
    <svg viewBox="0 0 32 32" className={className} aria-hidden>
      <rect width="32" height="32" rx="8" className="fill-accent" />
      <path d="M9 20.5a4.5 4.5 0 0 1 .9-8.9 6 6 0 0 1 11.5 1.6A3.7 3.7 0 0 1 21.5 20.5Z" className="fill-accent-fg" />
    </svg>
  );
}

export function Brand() {
  return (
    <span className="inline-flex items-center gap-2 text-[15px] font-semibold tracking-tight">
      <Logo />
      SkyPanel
    </span>
  );
}
