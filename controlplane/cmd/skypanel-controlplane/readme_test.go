package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"skypanel/controlplane/internal/config"
	"skypanel/controlplane/internal/testenv"
)

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../README.md")
	require.NoError(t, err)
	return string(b)
}

// TestReadmeCurlExamplesWorkAsWritten runs the README's API examples (the sh blocks marked
// <!-- api-example -->) with bash, curl and jq against a fresh control plane.
func TestReadmeCurlExamplesWorkAsWritten(t *testing.T) {
	_, curlErr := exec.LookPath("curl")
	_, jqErr := exec.LookPath("jq")
	testenv.Require(t, curlErr == nil && jqErr == nil, "curl and jq")
	blocks := regexp.MustCompile("(?s)<!-- api-example -->\\s*```sh\\n(.*?)```").FindAllStringSubmatch(readme(t), -1)
	require.GreaterOrEqual(t, len(blocks), 2, "the README has its API examples")
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		script.WriteString(b[1])
	}

	env := testenv.Start(t, testenv.WithMail())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Env = append(os.Environ(), "SKYPANEL="+env.URL)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the README examples fail:\n%s", out)
	got := string(out)
	for _, want := range []string{
		`"email":"ada@example.com"`,                                      // SignUp and WhoAmI
		"organization.created", "invitation.created", "apitoken.created", // ListActivity with the API token
		`"state":"ok"`, `"lowBalanceThreshold":"500"`, "}}hour\n", // the wallet and the usage report
		`"code":"invalid_argument"`, "email: ", "password: ", // the bad-input example
	} {
		require.Contains(t, got, want, "README example output:\n%s", got)
	}
	// The invitation the example sends really goes out.
	env.Mail.WaitFor(t, "grace@example.com", "invited you")
}

// TestReadmeDocumentsEveryFlag keeps the configuration table true to the code.
func TestReadmeDocumentsEveryFlag(t *testing.T) {
	text := readme(t)
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, name := range config.Flags(fs).FlagNames() {
		require.Contains(t, text, "`--"+name+"`", "README's configuration table lacks --%s", name)
		require.Contains(t, text, "`"+config.EnvName(name)+"`", "README's configuration table lacks %s", config.EnvName(name))
	}
}
