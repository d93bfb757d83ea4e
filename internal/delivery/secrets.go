package delivery

import "github.com/kilnhq/terraform-provider-kiln/internal/redact"

// secretsOf are the values of a project and environment that must not appear
// in an error, a log line or a diagnostic: variable values and the pull
// secret's credentials.
func secretsOf(p Project, env Environment) redact.Secrets {
	var s redact.Secrets
	for _, vars := range []map[string]string{p.Variables, env.Variables} {
		for _, v := range vars {
			s.Add(v)
		}
	}
	if ps := env.PullSecret; ps != nil {
		s.Add(ps.Password, ps.Username+":"+ps.Password)
	}
	return s
}
