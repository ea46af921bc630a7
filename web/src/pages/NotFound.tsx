import { Compass } from "lucide-react";
import { Link } from "wouter";
import { EmptyState, useTitle } from "../components/ui";

export default function NotFound() {
  useTitle("Page not found");
  return (
    <EmptyState
      icon={<Compass className="size-5" aria-hidden />}
      title="Page not found"
      action={
        <Link href="/" className="text-sm font-medium text-accent hover:underline">
          Go to the dashboard
        </Link>
      }
    >
      There's nothing at this address, or you don't have access to it.
    </EmptyState>
  );
}
