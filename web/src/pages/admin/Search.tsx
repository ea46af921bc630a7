import { Search as SearchIcon } from "lucide-react";
import { useEffect, useState } from "react";
import { Input } from "../../components/ui";

/** SearchBox reports its text after the typing pauses. */
export function SearchBox({ label, onSearch }: { label: string; onSearch: (q: string) => void }) {
  const [text, setText] = useState("");
  useEffect(() => {
    const t = setTimeout(() => onSearch(text.trim()), 250);
    return () => clearTimeout(t);
  }, [text, onSearch]);
  return (
    <div className="relative">
      <SearchIcon className="pointer-events-none absolute top-1/2 left-3 size-4 -translate-y-1/2 text-muted" aria-hidden />
      <Input type="search" aria-label={label} placeholder={label} value={text} onChange={(e) => setText(e.target.value)} className="pl-9" />
    </div>
  );
}
