package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// A command is one of streamgate's commands or subcommands. dispatch
// parses every command line the same way: -h, -help, --help and
// `help NAME` print the command's usage and flags (exit status 0); a bad
// flag, a bad value, a missing or a stray argument is one line on stderr,
// "streamgate: NAME: …", and exit status 2; an error while running is one
// line and exit status 1.
type command struct {
	// name is the command as typed after streamgate: "stack",
	// "bench compare".
	name string
	// usage is its part of the usage text: its synopsis lines, each
	// "  streamgate NAME …", then what it does, indented.
	usage string
	// notes are paragraphs of the usage text printed after this
	// command's help too (tracing, for the serving commands).
	notes []string
	// lead names an argument taken before the flags ("NAME" of service);
	// empty for none.
	lead string
	// minArgs and maxArgs bound the arguments after the flags (maxArgs
	// -1: no bound); want says what they are when too few are given.
	minArgs, maxArgs int
	want             string
	// hidden leaves the command out of the whole usage (bench serve).
	hidden bool
	// flags declares the command's flags on fs and returns what runs it
	// once they are parsed; nil for a command made of subcommands.
	flags func(fs *flag.FlagSet) runner
	// subs are its subcommands (bench: compare, serve).
	subs []*command
}

// A runner runs a command whose command line was accepted.
type runner func(ctx context.Context, in *invocation) error

// invocation is a parsed command line and where the command writes.
type invocation struct {
	lead   string   // the argument before the flags (command.lead)
	args   []string // the arguments after the flags
	flags  *flag.FlagSet
	stdout io.Writer
	stderr io.Writer
}

// usageError is a command line that does not make sense: dispatch prints
// it on one line and exits 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef is a usageError.
func usagef(format string, a ...any) error { return &usageError{fmt.Errorf(format, a...)} }

// errNotOK is a command whose answer said it failed and that printed
// that answer (call, conformance): exit status 1, nothing on stderr.
var errNotOK = errors.New("the answer was not ok")

// dispatch runs a command line and returns the exit status: 0; 1 when the
// command failed while running (a port in use, a service down); 2 when
// the command line makes no sense.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, wholeUsage())
		return 2
	}
	if isHelp(args[0]) {
		if args[0] != "help" || len(args) == 1 {
			fmt.Fprint(stdout, wholeUsage())
			return 0
		}
		c, ok := lookupHelp(args[1:])
		if !ok {
			fmt.Fprintf(stderr, "streamgate: unknown command %q (streamgate help lists the commands)\n", strings.Join(args[1:], " "))
			return 2
		}
		fmt.Fprint(stdout, c.help())
		return 0
	}
	c := lookup(commands(), args[0])
	if c == nil {
		fmt.Fprintf(stderr, "streamgate: unknown command %q (streamgate help lists the commands)\n", args[0])
		return 2
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

// run parses args and runs c (or the subcommand they name).
func (c *command) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	in, err := c.parse(args)
	if err == nil && c.subs != nil {
		sub := lookup(c.subs, in.args[0])
		if sub == nil {
			err = usagef("unknown subcommand %q", in.args[0])
		} else {
			return sub.run(ctx, in.args[1:], stdout, stderr)
		}
	}
	var help *helpShown
	if errors.As(err, &help) {
		fmt.Fprint(stdout, c.help())
		return 0
	}
	if err == nil {
		in.stdout, in.stderr = stdout, stderr
		err = in.run(ctx, in.invocation)
		closeLogs()
	}
	var usageErr *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errNotOK):
		return 1
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "streamgate: %s: %v (streamgate help %s)\n", c.name, err, c.name)
		return 2
	}
	fmt.Fprintf(stderr, "streamgate: %s: %v\n", c.name, err)
	return 1
}

// parsed is an invocation with the runner its flags returned.
type parsed struct {
	*invocation
	run runner
}

// helpShown is a command line asking for the command's help.
type helpShown struct{}

func (*helpShown) Error() string { return "help requested" }

// parse reads c's command line: its leading argument, its flags, and the
// count of the arguments after them.
func (c *command) parse(args []string) (parsed, error) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, help is c.help()
	var run runner
	if c.flags != nil {
		run = c.flags(fs)
	}
	in := &invocation{flags: fs}
	if c.lead != "" && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		in.lead, args = args[0], args[1:]
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return parsed{}, &helpShown{}
	case err != nil:
		return parsed{}, &usageError{err}
	}
	in.args = fs.Args()
	if c.subs != nil {
		if len(in.args) == 0 {
			return parsed{}, usagef("want %s (a subcommand)", strings.Join(visible(c.subs), " or "))
		}
		return parsed{invocation: in}, nil
	}
	n := len(in.args)
	if c.maxArgs >= 0 && n > c.maxArgs {
		return parsed{}, usagef("unexpected argument %q", in.args[c.maxArgs])
	}
	if n < c.minArgs {
		return parsed{}, usagef("want %s", c.want)
	}
	return parsed{invocation: in, run: run}, nil
}

// isHelp says whether an argument asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// lookup finds the command called name.
func lookup(cmds []*command, name string) *command {
	for _, c := range cmds {
		if strings.TrimPrefix(c.name, parentName(c.name)) == name {
			return c
		}
	}
	return nil
}

// parentName is "bench " for "bench compare", "" for "stack".
func parentName(name string) string {
	if i := strings.LastIndexByte(name, ' '); i >= 0 {
		return name[:i+1]
	}
	return ""
}

// lookupHelp finds the command `help` names: "bench compare", "load",
// "service users" (the argument before a command's flags may be given).
func lookupHelp(path []string) (*command, bool) {
	cmds := commands()
	var c *command
	for i, name := range path {
		switch {
		case c != nil && c.subs == nil:
			return c, c.lead != "" && i == len(path)-1
		case c != nil:
			cmds = c.subs
		}
		if c = lookup(cmds, name); c == nil {
			return nil, false
		}
	}
	return c, true
}

// visible are the names of the commands the usage lists.
func visible(cmds []*command) []string {
	var names []string
	for _, c := range cmds {
		if !c.hidden {
			names = append(names, strings.TrimPrefix(c.name, parentName(c.name)))
		}
	}
	return names
}

// help is c's usage, its notes, then its flags.
func (c *command) help() string {
	var b strings.Builder
	b.WriteString("usage:\n")
	if c.subs != nil {
		for _, s := range c.subs {
			if !s.hidden {
				b.WriteString(s.usage)
			}
		}
		return b.String()
	}
	b.WriteString(c.usage)
	for _, n := range c.notes {
		b.WriteString(n)
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.flags(fs)
	if hasFlags(fs) {
		b.WriteString("\nflags:\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
	}
	return b.String()
}

// hasFlags says whether fs declares any flag.
func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// wholeUsage is every listed command's usage, then the notes.
func wholeUsage() string {
	var b strings.Builder
	b.WriteString("usage:\n")
	var walk func([]*command)
	walk = func(cmds []*command) {
		for _, c := range cmds {
			if c.hidden {
				continue
			}
			b.WriteString(c.usage)
			walk(c.subs)
		}
	}
	walk(commands())
	b.WriteString(helpUsage)
	b.WriteString(tracingNote)
	b.WriteString(firstRunNote)
	return b.String()
}
