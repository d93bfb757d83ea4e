package testenv

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// RegistryBed is the test OCI registry (scripts/build-testbed.sh): Debian's
// docker-registry on 127.0.0.1 over plain HTTP, behind basic auth.
type RegistryBed struct {
	Host     string // 127.0.0.1:<port>
	Username string
	Password string
}

// GitBed is the test git server (scripts/build-testbed.sh): git-http-backend
// on 127.0.0.1 behind basic auth, serving the bare repositories under Root.
type GitBed struct {
	URL      string // http://127.0.0.1:<port>
	Root     string
	Username string
	Password string
}

type buildBed struct {
	registry RegistryBed
	git      GitBed
}

var (
	buildOnce sync.Once
	build     buildBed
	buildErr  error
)

func startBuildBed(t testing.TB) buildBed {
	t.Helper()
	buildOnce.Do(func() {
		var out []byte
		out, buildErr = runScript("build-testbed.sh", 10*time.Minute)
		if buildErr != nil {
			return
		}
		env := parseEnv(out)
		build = buildBed{
			registry: RegistryBed{
				Host:     env["KILN_TEST_REGISTRY"],
				Username: env["KILN_TEST_REGISTRY_USERNAME"],
				Password: env["KILN_TEST_REGISTRY_PASSWORD"],
			},
			git: GitBed{
				URL:      env["KILN_TEST_GIT_URL"],
				Root:     env["KILN_TEST_GIT_ROOT"],
				Username: env["KILN_TEST_GIT_USERNAME"],
				Password: env["KILN_TEST_GIT_PASSWORD"],
			},
		}
		if build.registry.Host == "" || build.registry.Password == "" || build.git.URL == "" || build.git.Root == "" {
			buildErr = fmt.Errorf("build-testbed.sh printed an incomplete environment:\n%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build test bed: %v", buildErr)
	}
	return build
}

// Registry brings the test registry up (reusing a running one) and returns it.
func Registry(t testing.TB) RegistryBed {
	t.Helper()
	return startBuildBed(t).registry
}

// GitServer brings the test git server up (reusing a running one) and returns it.
func GitServer(t testing.TB) GitBed {
	t.Helper()
	return startBuildBed(t).git
}

// GitRepo is a repository on the test git server with a work tree on this
// machine that commits and pushes to it, as a developer would.
type GitRepo struct {
	URL  string // the server's URL of the repository
	Auth *githttp.BasicAuth
	work *git.Repository
	dir  string
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// NewRepo creates an empty bare repository on the server (its default branch
// is main), removed when the test ends.
func (g GitBed) NewRepo(t testing.TB) *GitRepo {
	t.Helper()
	bare, err := os.MkdirTemp(g.Root, unsafeName.ReplaceAllString(t.Name(), "_")+"-*.git")
	if err != nil {
		t.Fatalf("new repository: %v", err)
	}
	return g.initRepo(t, bare)
}

// Group is the server with a directory of its own under Root, removed when
// the test ends: a configuration that names its repositories itself (the
// quickstart's <git_url>/quickstart-backend.git) finds them there with the
// group's URL, apart from other tests' and from make quickstart's.
func (g GitBed) Group(t testing.TB) GitBed {
	t.Helper()
	dir, err := os.MkdirTemp(g.Root, unsafeName.ReplaceAllString(t.Name(), "_")+"-*")
	if err != nil {
		t.Fatalf("new repository group: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	g.URL += "/" + filepath.Base(dir)
	g.Root = dir
	return g
}

// NamedRepo is NewRepo with the repository's name given: <URL>/<name>.git.
func (g GitBed) NamedRepo(t testing.TB, name string) *GitRepo {
	t.Helper()
	bare := filepath.Join(g.Root, name+".git")
	if err := os.Mkdir(bare, 0o755); err != nil {
		t.Fatalf("new repository: %v", err)
	}
	return g.initRepo(t, bare)
}

// initRepo makes the empty directory bare a bare repository, and a work tree
// that pushes to it.
func (g GitBed) initRepo(t testing.TB, bare string) *GitRepo {
	t.Helper()
	t.Cleanup(func() { _ = os.RemoveAll(bare) })
	main := git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}
	if _, err := git.PlainInitWithOptions(bare, &git.PlainInitOptions{Bare: true, InitOptions: main}); err != nil {
		t.Fatalf("new repository: %v", err)
	}
	r := &GitRepo{
		URL:  g.URL + "/" + filepath.Base(bare),
		Auth: &githttp.BasicAuth{Username: g.Username, Password: g.Password},
		dir:  t.TempDir(),
	}
	var err error
	r.work, err = git.PlainInitWithOptions(r.dir, &git.PlainInitOptions{InitOptions: main})
	if err != nil {
		t.Fatalf("new work tree: %v", err)
	}
	if _, err := r.work.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.URL}}); err != nil {
		t.Fatalf("new work tree: %v", err)
	}
	return r
}

var testSignature = object.Signature{Name: "Kiln Test", Email: "test@kiln.invalid"}

// Commit writes files (path → content; nil removes the file) into the work
// tree, commits them on main and pushes main. It returns the commit's hash.
func (r *GitRepo) Commit(t testing.TB, message string, files map[string][]byte) string {
	t.Helper()
	wt, err := r.work.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		path := filepath.Join(r.dir, filepath.FromSlash(name))
		if content == nil {
			if _, err := wt.Remove(name); err != nil {
				t.Fatalf("remove %s: %v", name, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
	}
	sig := testSignature
	sig.When = time.Now().Truncate(time.Second)
	hash, err := wt.Commit(message, &git.CommitOptions{Author: &sig, Committer: &sig})
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	r.push(t, "refs/heads/main:refs/heads/main")
	return hash.String()
}

// PushBranch pushes main's last commit as branch name.
func (r *GitRepo) PushBranch(t testing.TB, name string) {
	t.Helper()
	r.push(t, config.RefSpec("refs/heads/main:refs/heads/"+name))
}

// Tag tags the last commit, annotated when message is not empty, and pushes
// the tag.
func (r *GitRepo) Tag(t testing.TB, name, message string) {
	t.Helper()
	head, err := r.work.Head()
	if err != nil {
		t.Fatal(err)
	}
	var opts *git.CreateTagOptions
	if message != "" {
		sig := testSignature
		sig.When = time.Now().Truncate(time.Second)
		opts = &git.CreateTagOptions{Tagger: &sig, Message: message}
	}
	if _, err := r.work.CreateTag(name, head.Hash(), opts); err != nil {
		t.Fatalf("tag %s: %v", name, err)
	}
	r.push(t, config.RefSpec("refs/tags/"+name+":refs/tags/"+name))
}

func (r *GitRepo) push(t testing.TB, spec config.RefSpec) {
	t.Helper()
	err := r.work.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: []config.RefSpec{spec}, Auth: r.Auth})
	if err != nil && err != git.NoErrAlreadyUpToDate {
		t.Fatalf("push %s: %v", spec, err)
	}
}

// SampleService returns the files of the sample service
// (internal/testenv/sample: a Go HTTP backend whose /api/buildstamp answers
// the build time injected with -ldflags -X), path → content, ready to commit.
func SampleService(t testing.TB) map[string][]byte {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := DirFiles(filepath.Join(root, "internal", "testenv", "sample"))
	if err != nil {
		t.Fatalf("sample service: %v", err)
	}
	return files
}

// DirFiles returns the files below dir, path (relative, with slashes) →
// content, ready to commit.
func DirFiles(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)], err = os.ReadFile(path)
		return err
	})
	return files, err
}
