package procstat

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// spin burns CPU in this process for d of wall time.
func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

// waitForCPU waits until cpu() reaches want, failing after 10 s: on a loaded machine a busy
// process gets only part of its wall time on a core.
func waitForCPU(t *testing.T, what string, cpu func() time.Duration, want time.Duration, work func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for cpu() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s of CPU after 10s, want %s", what, cpu(), want)
		}
		work()
	}
}

func TestProcessSeesThisProcessWork(t *testing.T) {
	a, err := Process(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, a.RSS)
	waitForCPU(t, "this process, spinning", func() time.Duration {
		b, err := Process(os.Getpid())
		require.NoError(t, err)
		return b.CPU - a.CPU
	}, 200*time.Millisecond, func() { spin(20 * time.Millisecond) })
	b, err := Process(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, b.CPU-a.CPU, 200*time.Millisecond)
	require.Positive(t, Share(a, b))
	require.LessOrEqual(t, Share(a, b), 100.0*float64(runtime.NumCPU()))
	require.InDelta(t, float64(b.CPU), float64(CPU(os.Getpid())), float64(50*time.Millisecond))
	require.Equal(t, os.Getppid(), Parent(os.Getpid()))

	_, err = Process(1 << 30)
	require.Error(t, err)
	require.Zero(t, CPU(1<<30))
	require.Zero(t, TreeCPU(0))
}

func TestTreeCPUCountsChildren(t *testing.T) {
	child := exec.Command("sh", "-c", "while :; do :; done")
	require.NoError(t, child.Start())
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	waitForCPU(t, "the busy child", func() time.Duration { return CPU(child.Process.Pid) },
		200*time.Millisecond, func() { time.Sleep(20 * time.Millisecond) })
	own := CPU(os.Getpid())
	tree := TreeCPU(os.Getpid())
	after := CPU(child.Process.Pid)
	require.GreaterOrEqual(t, tree-own, 200*time.Millisecond, "the busy child's CPU is counted")
	require.LessOrEqual(t, tree-own, after+20*time.Millisecond, "and nothing else")
}

func TestMachineCountsTime(t *testing.T) {
	busy0, idle0 := Machine()
	spin(200 * time.Millisecond)
	busy1, idle1 := Machine()
	require.GreaterOrEqual(t, busy1-busy0, 100*time.Millisecond)
	require.GreaterOrEqual(t, idle1, idle0)
}

func TestDescribeReadsTheMachine(t *testing.T) {
	m := Describe()
	require.Positive(t, m.CPUs)
	require.NotEqual(t, "unknown", m.Memory)
	require.NotEqual(t, "unknown", m.Kernel)
}
