package libvirt

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Console output as the test bed's guests print it (SeaBIOS told to use the
// serial port, iPXE, GRUB, the kernel), escape sequences and all.
const (
	firmwareOutput = "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n" +
		"Machine UUID ad16c728-3039-4eea-a053-3887fb70951d\r\n\r\n\r\n" +
		"iPXE (http://ipxe.org) 00:10.0 C000 PCI2.10 PnP PMM+1EFCEF80+1EF0EF80 C000\r\n" +
		"Press Ctrl-B to configure iPXE (PCI 00:10.0)...\r                                        \r\n\r\n\r\n" +
		"Booting from Hard Disk...\r\n"
	noBootableDevice = "Boot failed: not a bootable disk\r\n\r\nNo bootable device."
	grubOutput       = "GRUB loading.\r\n\x1b[0;30;47mWelc\x1b[11;04H\x1b[11;05Home to GRUB!\r\n\r\n" +
		"\x1b[H\x1b[J\x1b[1;1H\x1b[H\x1b[J\x1b[1;1H  Booting `Debian GNU/Linux'\n\r\n\r"
	kernelOutput = "[    0.000000] Linux version 6.1.0-50-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.176-1\r\n" +
		"[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-50-amd64 ro console=ttyS0,115200n8 net.ifnames=0\r\n"
)

func TestConsoleLinesStripsEscapesAndControls(t *testing.T) {
	raw := firmwareOutput + grubOutput +
		"\x1b]0;a window title\x07bell\x07 back\bspace\ttab \xff\xfeinvalid\r\n" +
		"\x1b(Bcharset \x1b]2;title ended by ST\x1b\\selected\n" +
		"cut at \x1b["
	want := []string{
		"SeaBIOS (version 1.16.2-debian-1.16.2-1)",
		"Machine UUID ad16c728-3039-4eea-a053-3887fb70951d",
		"iPXE (http://ipxe.org) 00:10.0 C000 PCI2.10 PnP PMM+1EFCEF80+1EF0EF80 C000",
		"Press Ctrl-B to configure iPXE (PCI 00:10.0)...",
		"Booting from Hard Disk...",
		"GRUB loading.",
		"Welcome to GRUB!",
		"  Booting `Debian GNU/Linux'",
		"bell backspace tab invalid",
		"charset selected",
		"cut at",
	}
	if got := consoleLines([]byte(raw)); !reflect.DeepEqual(got, want) {
		t.Fatalf("consoleLines:\n got: %q\nwant: %q", got, want)
	}
}

func TestClassifyLine(t *testing.T) {
	for line, want := range map[string]BootPhase{
		"":                                 BootNothing,
		"   ":                              BootNothing,
		"SeaBIOS (version 1.16.2)":         BootFirmware,
		"Booting from Hard Disk...":        BootFirmware,
		"No bootable device.":              BootFirmware,
		"BdsDxe: loading Boot0001":         BootFirmware,
		"GRUB loading.":                    BootBootloader,
		"Welcome to GRUB!":                 BootBootloader,
		"  Booting `Debian GNU/Linux'":     BootBootloader,
		"Loading Linux 6.1.0-50-amd64 ...": BootBootloader,
		"grub rescue> ":                    BootBootloader,
		"Decompressing Linux... Parsing ELF... done.":                 BootBootloader,
		"[    0.000000] Linux version 6.1.0-50-amd64":                 BootKernel,
		"[   12.345678] virtio_net virtio1 eth0: renamed":             BootKernel,
		"Booting Linux on physical CPU 0x0000000000":                  BootKernel,
		"[  OK  ] Started ssh.service - OpenBSD Secure Shell server.": BootKernel,
		"debian login: ": BootKernel,
	} {
		if got := classifyLine(line); got != want {
			t.Errorf("classifyLine(%q) = %v, want %v", line, got, want)
		}
	}
}

// TestConsoleLogPhases feeds a boot to the log a few bytes at a time, so lines
// and escape sequences arrive cut in pieces as the stream delivers them.
func TestConsoleLogPhases(t *testing.T) {
	var log consoleLog
	if got := log.Phase(); got != BootNothing {
		t.Fatalf("empty log: phase %v", got)
	}
	for _, stage := range []struct {
		output string
		want   BootPhase
	}{
		{firmwareOutput, BootFirmware},
		{grubOutput, BootBootloader},
		{kernelOutput, BootKernel},
		// A reboot back into the firmware does not undo what was seen.
		{firmwareOutput, BootKernel},
	} {
		for chunk := range slices.Chunk([]byte(stage.output), 3) {
			if _, err := log.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if got := log.Phase(); got != stage.want {
			t.Fatalf("after %q: phase %v, want %v", stage.output, got, stage.want)
		}
	}
}

// The firmware's last words end without a newline; they count all the same.
func TestConsoleLogUnterminatedLine(t *testing.T) {
	var log consoleLog
	fmt.Fprint(&log, noBootableDevice)
	if got := log.Phase(); got != BootFirmware {
		t.Fatalf("phase %v, want %v", got, BootFirmware)
	}
	want := []string{"Boot failed: not a bootable disk", "No bootable device."}
	if got := log.Tail(); !reflect.DeepEqual(got, want) {
		t.Fatalf("tail %q, want %q", got, want)
	}
	fmt.Fprint(&log, "  Booting `Debian GNU/Linux'")
	if got := log.Phase(); got != BootBootloader {
		t.Fatalf("phase %v, want %v", got, BootBootloader)
	}
}

func TestConsoleLogTailIsBounded(t *testing.T) {
	var log consoleLog
	for i := range 50 {
		fmt.Fprintf(&log, "[%5d.000000] line %d\r\n", i, i)
	}
	fmt.Fprint(&log, "partial")
	got := log.Tail()
	if len(got) != consoleTailLines || got[0] != "[   31.000000] line 31" || got[len(got)-1] != "partial" {
		t.Fatalf("tail = %q", got)
	}
	if len(log.lines) > consoleTailLines {
		t.Fatalf("log holds %d lines, want at most %d", len(log.lines), consoleTailLines)
	}

	// A guest printing without newlines neither grows the log without bound
	// nor fills an error message with one endless line.
	var flood consoleLog
	for range 100 {
		fmt.Fprint(&flood, strings.Repeat("x", 1000))
	}
	if len(flood.pending) > maxPendingBytes+1000 {
		t.Fatalf("pending grew to %d bytes", len(flood.pending))
	}
	for _, line := range flood.Tail() {
		if len(line) > maxConsoleLine {
			t.Fatalf("line of %d bytes kept", len(line))
		}
	}
}

func TestBootErrorMessage(t *testing.T) {
	var log consoleLog
	fmt.Fprint(&log, firmwareOutput+grubOutput)
	err := &BootError{Domain: "builder", Type: "kvm", Waited: 3 * time.Minute, Seen: log.Phase(), Tail: log.Tail()}
	msg := err.Error()
	for _, want := range []string{
		`domain "builder" (domain type kvm)`,
		"within 3m0s",
		"the console shows bootloader output only",
		"\n    | SeaBIOS (version 1.16.2-debian-1.16.2-1)\n",
		"\n    |   Booting `Debian GNU/Linux'",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}

	silent := (&BootError{Domain: "builder", Type: "qemu", Waited: time.Minute}).Error()
	if !strings.Contains(silent, "the console shows nothing at all") || !strings.Contains(silent, "(no output)") {
		t.Errorf("message for a silent console:\n%s", silent)
	}
}
