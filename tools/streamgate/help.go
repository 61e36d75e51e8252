package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/streamgate/streamgate/services/run"
)

// helpShown is returned by a command asked for -h: dispatch prints text
// on stdout and exits 0.
type helpShown struct{ text string }

func (h *helpShown) Error() string { return "help requested" }

// usageError is a command line that does not make sense: dispatch prints
// it on one line and exits 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// parseFlags parses a command's flags: -h, -help and --help give the
// command's usage; a bad flag or value is a usageError whose message is
// the flag package's first line.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return &helpShown{text: commandHelp(fs)}
	case err != nil:
		return &usageError{err}
	}
	return nil
}

// isHelp says whether an argument asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// commandHelp is a command's part of the usage text, then its flags.
func commandHelp(fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("usage:\n")
	b.WriteString(usageOf(fs.Name()))
	b.WriteString("\nflags:\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}

// usageText is the whole usage, with the service names filled in.
func usageText() string {
	return fmt.Sprintf(usage, strings.Join(run.Names(), ", "))
}

// usageOf returns the lines of the usage text that describe command
// name: from its "  streamgate NAME" line to the next command's.
func usageOf(name string) string {
	var out []string
	in := false
	for _, line := range strings.Split(usageText(), "\n") {
		if strings.HasPrefix(line, "  streamgate ") {
			in = strings.HasPrefix(line, "  streamgate "+name+" ") || line == "  streamgate "+name
		}
		if in {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n") + "\n"
}
