// Package buildinfo reports which build of SkyPanel is running.
package buildinfo

import "runtime/debug"

// Version is set at link time (-ldflags "-X skypanel/shared/buildinfo.Version=v1.2.3");
// otherwise it is the VCS revision Go recorded, or "dev".
var Version = ""

// String returns the version.
func String() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "dev"
}
