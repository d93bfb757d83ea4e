package libvirt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// Boot progress is judged from the guest's serial console, read through
// libvirt's console stream: the libvirt host may be remote, so the serial log
// file is not ours to read.

// BootPhase is how far a guest's boot got, as its serial console shows it.
type BootPhase int

const (
	BootNothing    BootPhase = iota // no output at all
	BootFirmware                    // output, none of it from a bootloader or kernel: usually the firmware
	BootBootloader                  // a bootloader (GRUB, SYSLINUX, the kernel's own boot stub)
	BootKernel                      // the kernel or later (init, a login prompt)
)

func (p BootPhase) String() string {
	switch p {
	case BootFirmware:
		return "firmware output only"
	case BootBootloader:
		return "bootloader output only"
	case BootKernel:
		return "kernel output"
	}
	return "nothing at all"
}

var (
	// Kernel messages carry printk timestamps unless printk.time=0; the rest
	// catch such kernels once init or a getty speaks.
	kernelLine = regexp.MustCompile(`^\[\s*\d+\.\d+\]|Linux version \d|Booting Linux|\[\s*OK\s*\]|\blogin: *$`)
	// The x86 decompressor ("Decompressing Linux", "Booting the kernel") runs
	// before the kernel proper, which may still never start: a bootloader.
	bootloaderLine = regexp.MustCompile("GRUB loading|GNU GRUB|Welcome to GRUB|Booting `|Loading Linux|Loading initial ramdisk|grub( rescue)?>|" +
		"Decompressing Linux|Booting the kernel|SYSLINUX|ISOLINUX|EFI stub:|systemd-boot")
)

func classifyLine(line string) BootPhase {
	switch {
	case kernelLine.MatchString(line):
		return BootKernel
	case bootloaderLine.MatchString(line):
		return BootBootloader
	case strings.TrimSpace(line) != "":
		return BootFirmware
	}
	return BootNothing
}

const (
	consoleTailLines = 20
	maxConsoleLine   = 240  // bytes kept of one line, enough for any boot message
	maxPendingBytes  = 4096 // an unterminated line longer than this is taken as complete
)

// consoleLines turns raw console output into printable lines: escape sequences
// and control characters are dropped, a carriage return ends a line as a
// newline does, blank lines are left out. Cursor moves are dropped rather than
// taken as line breaks: GRUB moves the cursor in the middle of its words.
func consoleLines(raw []byte) []string {
	var lines []string
	var cur []byte
	flush := func() {
		if len(cur) > maxConsoleLine {
			cur = cur[:maxConsoleLine]
		}
		line := strings.TrimRight(strings.ToValidUTF8(string(cur), ""), " ")
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
		cur = cur[:0]
	}
	for i := 0; i < len(raw); i++ {
		switch b := raw[i]; {
		case b == 0x1b:
			i = skipEscape(raw, i)
		case b == '\n' || b == '\r':
			flush()
		case b == '\t':
			cur = append(cur, ' ')
		case b < 0x20 || b == 0x7f:
		default:
			cur = append(cur, b)
		}
	}
	flush()
	return lines
}

// skipEscape returns the index of the last byte of the escape sequence that
// starts at raw[i] (an ESC).
func skipEscape(raw []byte, i int) int {
	j := i + 1
	if j >= len(raw) {
		return j - 1
	}
	switch raw[j] {
	case '[': // CSI: parameters and intermediates, then one final byte
		for j++; j < len(raw) && raw[j] >= 0x20 && raw[j] <= 0x3f; j++ {
		}
		return min(j, len(raw)-1)
	case ']', 'P', 'X', '^', '_': // OSC and other strings, ended by BEL or ESC \
		for j++; j < len(raw); j++ {
			if raw[j] == 0x07 {
				return j
			}
			if raw[j] == 0x1b && j+1 < len(raw) && raw[j+1] == '\\' {
				return j + 1
			}
		}
		return len(raw) - 1
	}
	// Two-byte sequences (ESC c resets the terminal) and charset selections.
	for ; j < len(raw) && raw[j] >= 0x20 && raw[j] <= 0x2f; j++ {
	}
	return min(j, len(raw)-1)
}

// consoleLog is an io.Writer that keeps what a boot needs judged: the furthest
// phase seen and the last lines, in bounded memory.
type consoleLog struct {
	mu      sync.Mutex
	phase   BootPhase
	lines   []string
	pending []byte // the unterminated last line, raw
}

func (l *consoleLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = append(l.pending, p...)
	// Escape sequences hold no newline, so cutting at one never splits them.
	end := bytes.LastIndexByte(l.pending, '\n') + 1
	if end == 0 && len(l.pending) > maxPendingBytes {
		end = len(l.pending)
	}
	if end == 0 {
		return len(p), nil
	}
	for _, line := range consoleLines(l.pending[:end]) {
		l.phase = max(l.phase, classifyLine(line))
		l.lines = append(l.lines, line)
	}
	if n := len(l.lines); n > consoleTailLines {
		l.lines = l.lines[n-consoleTailLines:]
	}
	l.pending = append(l.pending[:0], l.pending[end:]...)
	return len(p), nil
}

// Phase is the furthest boot phase seen, the unterminated last line included
// (firmware ends "No bootable device." without a newline).
func (l *consoleLog) Phase() BootPhase {
	l.mu.Lock()
	defer l.mu.Unlock()
	phase := l.phase
	for _, line := range consoleLines(l.pending) {
		phase = max(phase, classifyLine(line))
	}
	return phase
}

// Tail returns the last lines seen, the unterminated last line included.
func (l *consoleLog) Tail() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	tail := append(append([]string{}, l.lines...), consoleLines(l.pending)...)
	return tail[max(0, len(tail)-consoleTailLines):]
}

// quoteConsole renders console lines for an error message.
func quoteConsole(lines []string) string {
	if len(lines) == 0 {
		return "    (no output)"
	}
	return "    | " + strings.Join(lines, "\n    | ")
}

// BootError reports a guest that showed no kernel output on its serial console
// within the boot timeout.
type BootError struct {
	Domain string
	Type   string // the libvirt domain type, "kvm" or "qemu"
	Waited time.Duration
	Seen   BootPhase
	Tail   []string // the last console lines
}

func (e *BootError) Error() string {
	return fmt.Sprintf("domain %q (domain type %s) showed no kernel output on its serial console within %s of starting: "+
		"the console shows %s. Last console lines:\n%s", e.Domain, e.Type, e.Waited, e.Seen, quoteConsole(e.Tail))
}

// console follows a domain's serial console over a libvirt connection of its
// own, so closing that connection is what ends the stream.
type console struct {
	log  consoleLog
	err  error // why the console could not be followed; nil when it is
	conn *golibvirt.Libvirt
	stop chan struct{}
	done chan struct{}
}

// consoleOpenTimeout bounds how long libvirt may take to attach the console.
const consoleOpenTimeout = 30 * time.Second

// followConsole attaches to the domain's serial console. It always returns a
// console; when attaching failed, its err says why and boot progress cannot be
// judged. The caller closes it.
func (c *Client) followConsole(ctx context.Context, dom golibvirt.Domain) *console {
	con := &console{stop: make(chan struct{}), done: make(chan struct{})}
	conn, err := c.dialOnce()
	if err != nil {
		con.err = err
		close(con.done)
		return con
	}
	con.conn = conn
	attached := make(chan struct{})
	var streamErr error
	go func() {
		defer close(con.done)
		// Flags 0: a console session someone else holds (virsh console) is
		// left alone, and this create goes on without the boot check.
		streamErr = conn.DomainOpenConsoleBidirectional(dom, nil, &attachSignal{attached: attached, stop: con.stop}, &con.log, 0)
	}()
	select {
	case <-attached:
	case <-con.done:
		con.err = fmt.Errorf("open the serial console: %w", streamErr)
	case <-time.After(consoleOpenTimeout):
		con.err = fmt.Errorf("open the serial console: no answer from libvirt in %s", consoleOpenTimeout)
	case <-ctx.Done():
		con.err = ctx.Err()
	}
	return con
}

// attachSignal is the console stream's input. go-libvirt starts reading it only
// once libvirt has attached the stream, the one sign that the console is open;
// it sends the guest nothing and ends when the console is closed.
type attachSignal struct {
	once     sync.Once
	attached chan struct{}
	stop     <-chan struct{}
}

func (s *attachSignal) Read([]byte) (int, error) {
	s.once.Do(func() { close(s.attached) })
	<-s.stop
	return 0, io.EOF
}

// describe is the console's tail for an error message, or why there is none.
func (con *console) describe(name string) string {
	if con.err != nil {
		return fmt.Sprintf("the serial console could not be read (%v); its log on the libvirt host is %s", con.err, serialLogPath(name))
	}
	return fmt.Sprintf("last console lines (the full log on the libvirt host is %s):\n%s", serialLogPath(name), quoteConsole(con.log.Tail()))
}

// ended reports whether the console stream ended before Close: libvirtd closed
// it (a restart takes the stream with its connection), or it never opened.
func (con *console) ended() bool {
	select {
	case <-con.done:
		return true
	default:
		return false
	}
}

func (con *console) Close() {
	close(con.stop)
	if con.conn != nil {
		_ = con.conn.Disconnect()
	}
	<-con.done
}
