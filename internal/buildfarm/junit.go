package buildfarm

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jstemmer/go-junit-report/v2/junit"
	"github.com/jstemmer/go-junit-report/v2/parser/gotest"
)

// Counts are a test run's numbers, as its JUnit report gives them. Every
// test case is exactly one of passed, failed, errors (it could not run to a
// verdict: no result, a build error) and skipped.
type Counts struct {
	Total   int `json:"total"`
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Errors  int `json:"errors"`
	Skipped int `json:"skipped"`
}

// Ran is the number of tests that ran: all but the skipped.
func (c Counts) Ran() int { return c.Total - c.Skipped }

// PassRate is the share of the tests that ran which passed, in percent; 0
// when none ran.
func (c Counts) PassRate() float64 {
	if c.Ran() == 0 {
		return 0
	}
	return 100 * float64(c.Passed) / float64(c.Ran())
}

// FailedTest is a test that failed or errored, with its message.
type FailedTest struct {
	Name    string `json:"name"` // <classname>.<name>, or <name>
	Message string `json:"message"`
}

// maxFailedTests and maxMessage bound what a run keeps of its failures: the
// record and the error stay readable, the report has the rest.
const (
	maxFailedTests = 10
	maxMessage     = 600
)

// summary is a report's counts and first failures.
func summary(suites junit.Testsuites) (Counts, []FailedTest) {
	var c Counts
	var failed []FailedTest
	for _, s := range suites.Suites {
		for _, tc := range s.Testcases {
			c.Total++
			var bad *junit.Result
			switch {
			case tc.Error != nil:
				c.Errors++
				bad = tc.Error
			case tc.Failure != nil:
				c.Failed++
				bad = tc.Failure
			case tc.Skipped != nil:
				c.Skipped++
			default:
				c.Passed++
			}
			if bad != nil && len(failed) < maxFailedTests {
				failed = append(failed, FailedTest{Name: testName(tc), Message: failureMessage(bad)})
			}
		}
	}
	return c, failed
}

func testName(tc junit.Testcase) string {
	if tc.Classname == "" {
		return tc.Name
	}
	return tc.Classname + "." + tc.Name
}

// failureMessage is what a failure says: its text without the test runner's
// own framing (go test's "=== RUN" and "--- FAIL" lines), else its message
// attribute; the end of it when it is long, where the cause usually is.
func failureMessage(r *junit.Result) string {
	var lines []string
	for _, line := range strings.Split(r.Data, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- FAIL") {
			continue
		}
		lines = append(lines, t)
	}
	msg := strings.Join(lines, "\n")
	if msg == "" {
		msg = strings.TrimSpace(r.Message)
	}
	if len(msg) > maxMessage {
		msg = "…" + msg[len(msg)-maxMessage:]
	}
	return msg
}

// goTestJSON converts go test -json output to a JUnit report, as
// go-junit-report does: a package's build error or a binary that died is a
// test case in error.
func goTestJSON(r io.Reader, timestamp time.Time) (junit.Testsuites, error) {
	report, err := gotest.NewJSONParser(gotest.TimestampFunc(func() time.Time { return timestamp })).Parse(r)
	if err != nil {
		return junit.Testsuites{}, fmt.Errorf("read go test -json output: %w", err)
	}
	return junit.CreateFromReport(report, ""), nil
}

// parseJUnit reads a JUnit XML report whose root is <testsuites> or a single
// <testsuite>.
func parseJUnit(data []byte) (junit.Testsuites, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("no XML element")
			}
			return junit.Testsuites{}, fmt.Errorf("not a JUnit report: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch start.Name.Local {
		case "testsuites":
			var s junit.Testsuites
			if err := dec.DecodeElement(&s, &start); err != nil {
				return junit.Testsuites{}, fmt.Errorf("not a JUnit report: %w", err)
			}
			return s, nil
		case "testsuite":
			var s junit.Testsuite
			if err := dec.DecodeElement(&s, &start); err != nil {
				return junit.Testsuites{}, fmt.Errorf("not a JUnit report: %w", err)
			}
			var all junit.Testsuites
			all.AddSuite(s)
			return all, nil
		default:
			return junit.Testsuites{}, fmt.Errorf("not a JUnit report: the root element is <%s>, want <testsuites> or <testsuite>", start.Name.Local)
		}
	}
}

// merge is one report of several: their suites, in order, and the totals.
func merge(reports ...junit.Testsuites) junit.Testsuites {
	var all junit.Testsuites
	for _, r := range reports {
		for _, s := range r.Suites {
			all.AddSuite(s)
		}
	}
	return all
}

// marshalJUnit is a report as the XML file Kiln pushes.
func marshalJUnit(suites junit.Testsuites) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	if err := suites.WriteXML(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
