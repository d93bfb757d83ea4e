// Package delivery is Kiln's delivery model on Kubernetes: projects of services
// with a startup order, environments (namespaces with variables, a pull secret,
// quotas), releases rendered from the services' YAML and applied group by
// group, with history and rollback, and versions (named sets of images pinned
// by digest, with the startup order they were made with). The cluster is the
// system of record. It has no Terraform types; cluster access goes through
// internal/kube.
package delivery

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"
)

// Defaults of a project.
const (
	DefaultControlNamespace = "kiln-system"
	DefaultImageRule        = "{{.Service}}:{{.Timestamp}}-{{.Branch}}"
)

// Project is a set of services, each a Kubernetes YAML template, started in order.
type Project struct {
	Name        string
	Description string
	// Services maps a service name to its YAML (one or more documents) with
	// ${variable} placeholders.
	Services map[string]string
	// StartupOrder holds ordered groups; every service is in exactly one group.
	StartupOrder     [][]string
	ImageRule        string
	BuildPoolLabels  map[string]string
	Variables        map[string]string
	ControlNamespace string
	// AllowClusterScoped lets services hold cluster-scoped kinds (a
	// ClusterRole, a CRD); without it a release refuses them.
	AllowClusterScoped bool
}

// Builtins are the placeholders every template may use besides variables.
var Builtins = []string{"image", "project", "env", "namespace", "service", "version", "ingress_domain"}

var (
	placeholder = regexp.MustCompile(`\$\{([^}]*)\}`)
	varName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dnsLabel    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

// ValidName reports whether s can name a project, environment or service (a DNS label).
func ValidName(s string) bool { return len(s) <= 63 && dnsLabel.MatchString(s) }

// Placeholders lists the distinct ${...} names a template uses, in order of appearance.
func Placeholders(tmpl string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range placeholder.FindAllStringSubmatch(tmpl, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// ImageNameData is what an image naming rule may use.
type ImageNameData struct {
	Project, Service, Branch, Version, Timestamp string
}

// ImageName applies the naming rule (a Go template) to data.
func ImageName(rule string, data ImageNameData) (string, error) {
	t, err := template.New("image").Option("missingkey=error").Parse(rule)
	if err != nil {
		return "", fmt.Errorf("image naming rule: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("image naming rule: %w", err)
	}
	return b.String(), nil
}

// Validate checks a project as a plan would: names, the startup order (every
// service exactly once, no unknown service), each template's YAML, that every
// placeholder is a built-in or a project variable (environments override values,
// the project declares them), and the image naming rule.
func (p Project) Validate() error {
	var errs []error
	if !ValidName(p.Name) {
		errs = append(errs, fmt.Errorf("project name %q is not a DNS label", p.Name))
	}
	if len(p.Services) == 0 {
		errs = append(errs, errors.New("a project needs at least one service"))
	}
	seen := map[string]int{}
	for gi, group := range p.StartupOrder {
		if len(group) == 0 {
			errs = append(errs, fmt.Errorf("startup order group %d is empty", gi+1))
		}
		for _, s := range group {
			if _, ok := p.Services[s]; !ok {
				errs = append(errs, fmt.Errorf("startup order group %d names unknown service %q", gi+1, s))
				continue
			}
			if prev, dup := seen[s]; dup {
				errs = append(errs, fmt.Errorf("service %q is in startup order groups %d and %d; each service starts exactly once", s, prev, gi+1))
			}
			seen[s] = gi + 1
		}
	}
	builtin := map[string]bool{}
	for _, b := range Builtins {
		builtin[b] = true
	}
	for v := range p.Variables {
		if !varName.MatchString(v) {
			errs = append(errs, fmt.Errorf("variable name %q must match %s", v, varName))
		}
		if builtin[v] {
			errs = append(errs, fmt.Errorf("variable %q shadows the built-in placeholder ${%s}", v, v))
		}
	}
	for _, name := range sortedKeys(p.Services) {
		if !ValidName(name) {
			errs = append(errs, fmt.Errorf("service name %q is not a DNS label", name))
		}
		if _, ok := seen[name]; !ok && len(p.StartupOrder) > 0 {
			errs = append(errs, fmt.Errorf("service %q is missing from the startup order", name))
		}
		tmpl := p.Services[name]
		filler := map[string]string{}
		for _, ph := range Placeholders(tmpl) {
			filler[ph] = "placeholder"
			if _, ok := p.Variables[ph]; !ok && !builtin[ph] {
				errs = append(errs, fmt.Errorf("service %q uses ${%s}, which is neither a built-in (%s) nor a project variable",
					name, ph, strings.Join(Builtins, ", ")))
			}
		}
		// Check the YAML's shape with every placeholder filled in.
		filled, err := renderDocuments(tmpl, filler)
		if err == nil {
			_, err = parseDocuments(filled)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("service %q: %w", name, err))
		}
	}
	if p.ImageRule != "" {
		if _, err := ImageName(p.ImageRule, ImageNameData{Project: p.Name, Service: "svc", Branch: "main", Version: "v1",
			Timestamp: time.Unix(0, 0).UTC().Format("20060102150405")}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Order returns the startup groups restricted to services, in order; a project
// without a startup order starts every service in one group.
func (p Project) Order(services []string) [][]string {
	want := map[string]bool{}
	for _, s := range services {
		want[s] = true
	}
	order := p.StartupOrder
	if len(order) == 0 {
		order = [][]string{sortedKeys(p.Services)}
	}
	var out [][]string
	for _, g := range order {
		var group []string
		for _, s := range g {
			if want[s] {
				group = append(group, s)
			}
		}
		if len(group) > 0 {
			out = append(out, group)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
