// Light, dark or the system's choice, kept in localStorage. index.html applies the stored
// choice before the first paint; this module changes it and follows the system setting.
import { useSyncExternalStore } from "react";

export type ThemeChoice = "light" | "dark" | "system";
const key = "skypanel.theme";
const media = window.matchMedia("(prefers-color-scheme: dark)");
const listeners = new Set<() => void>();

function stored(): ThemeChoice {
  const v = localStorage.getItem(key);
  return v === "light" || v === "dark" ? v : "system";
}

function apply(choice: ThemeChoice) {
  const dark = choice === "dark" || (choice === "system" && media.matches);
  document.documentElement.classList.toggle("dark", dark);
  document.documentElement.style.colorScheme = dark ? "dark" : "light";
}

media.addEventListener("change", () => apply(stored()));
window.addEventListener("storage", (e) => {
  if (e.key === key) {
    apply(stored());
    listeners.forEach((fn) => fn());
  }
});

export function setTheme(choice: ThemeChoice) {
  if (choice === "system") localStorage.removeItem(key);
  else localStorage.setItem(key, choice);
  apply(choice);
  listeners.forEach((fn) => fn());
}

export function useTheme(): ThemeChoice {
  return useSyncExternalStore(
    (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    stored,
  );
}
