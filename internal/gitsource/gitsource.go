// Package gitsource gives builds their sources: a branch, tag or commit of a
// remote git repository resolved to a commit from the advertised refs alone
// (no clone), the tree at exactly that commit as a deterministic tar stream,
// and the same stream and a content hash for a local directory.
package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"golang.org/x/crypto/ssh"
)

// ErrUnknownRef is wrapped by Resolve when the repository has no such ref.
var ErrUnknownRef = errors.New("no such branch, tag or ref")

// Credentials authenticate to a repository; which fields count depends on the
// URL's scheme. The zero value is anonymous access.
type Credentials struct {
	// HTTP(S) basic auth. Forges take an access token as Password (with any
	// Username, or the one they document).
	Username string
	Password string
	// HTTP(S) bearer token, for servers that want "Authorization: Bearer".
	Token string

	// SSH: a private key (PEM or OpenSSH format) and its passphrase, and the
	// server's host key, pinned as an authorized_keys line ("ssh-ed25519 AAAA…").
	// The login user comes from the URL, else "git".
	SSHPrivateKey []byte
	SSHPassphrase string
	SSHHostKey    string
}

// Repository is a remote git repository.
type Repository struct {
	URL         string
	Credentials Credentials
}

// Ref is a ref resolved to a commit.
type Ref struct {
	// Name is the full ref name ("refs/heads/main", "refs/tags/v1.2.0"); empty
	// when the ref asked for was a commit hash.
	Name   string
	Commit string
}

// Commit is the commit a source tree was taken from.
type Commit struct {
	Hash string
	// Time is the committer time, the natural SOURCE_DATE_EPOCH of a build.
	Time time.Time
}

var fullHash = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Resolve resolves ref — a branch or tag name, a full ref name, "HEAD", or a
// full commit hash — to a commit, from the refs the server advertises. An
// annotated tag resolves to the commit it tags. A name that is both a branch
// and a tag is refused as ambiguous. A commit hash is returned as it is: the
// protocol has no cheap way to ask whether an untipped commit exists, and
// Archive fails if it does not.
func (r Repository) Resolve(ctx context.Context, ref string) (Ref, error) {
	if fullHash.MatchString(ref) {
		return Ref{Commit: ref}, nil
	}
	if ref == "" {
		return Ref{}, fmt.Errorf("resolve in %s: empty ref", r.URL)
	}
	tips, err := r.tips(ctx)
	if err != nil {
		return Ref{}, err
	}
	var names []string
	switch {
	case ref == "HEAD" || strings.HasPrefix(ref, "refs/"):
		names = []string{ref}
	default:
		names = []string{"refs/heads/" + ref, "refs/tags/" + ref}
	}
	var found []Ref
	for _, name := range names {
		if commit, ok := tips[name]; ok {
			found = append(found, Ref{Name: name, Commit: commit})
		}
	}
	switch len(found) {
	case 0:
		return Ref{}, fmt.Errorf("resolve %q in %s: %w", ref, r.URL, ErrUnknownRef)
	case 1:
		return found[0], nil
	default:
		return Ref{}, fmt.Errorf("resolve %q in %s: both a branch and a tag; write refs/heads/%s or refs/tags/%s", ref, r.URL, ref, ref)
	}
}

// tips lists the advertised refs, ref name → commit, annotated tags peeled to
// their commits and HEAD followed to its branch.
func (r Repository) tips(ctx context.Context) (map[string]string, error) {
	auth, err := r.auth()
	if err != nil {
		return nil, err
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{r.URL}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return nil, fmt.Errorf("list refs of %s: %w", r.URL, err)
	}
	tips := map[string]string{}
	peeled := map[string]string{}
	var head plumbing.ReferenceName
	for _, ref := range refs {
		name := ref.Name().String()
		switch {
		case ref.Type() == plumbing.SymbolicReference:
			if name == "HEAD" {
				head = ref.Target()
			}
		case strings.HasSuffix(name, "^{}"):
			peeled[strings.TrimSuffix(name, "^{}")] = ref.Hash().String()
		default:
			tips[name] = ref.Hash().String()
		}
	}
	for name, commit := range peeled {
		tips[name] = commit
	}
	if commit, ok := tips[head.String()]; ok && head != "" {
		tips["HEAD"] = commit
	}
	return tips, nil
}

// Archive writes the tree of commit (a full hash) as a tar stream to w:
// entries sorted by path, directories 0755, files 0644 or 0755 as git records
// them, symlinks as links, owner 0, every time the commit's. The same commit
// gives the same bytes on any machine. The objects are fetched into memory: a
// commit at the tip of a branch or tag alone (depth 1), another one with the
// branches' and tags' history. Submodules are refused: their trees are in
// other repositories.
func (r Repository) Archive(ctx context.Context, commit string, w io.Writer) (Commit, error) {
	if !fullHash.MatchString(commit) {
		return Commit{}, fmt.Errorf("archive %s: %q is not a full commit hash", r.URL, commit)
	}
	c, err := r.fetchCommit(ctx, commit)
	if err != nil {
		return Commit{}, err
	}
	tree, err := c.Tree()
	if err != nil {
		return Commit{}, fmt.Errorf("archive %s at %s: %w", r.URL, commit, err)
	}
	entries, err := treeEntries(tree)
	if err != nil {
		return Commit{}, fmt.Errorf("archive %s at %s: %w", r.URL, commit, err)
	}
	when := c.Committer.When.UTC()
	if err := writeTar(w, entries, when); err != nil {
		return Commit{}, fmt.Errorf("archive %s at %s: %w", r.URL, commit, err)
	}
	return Commit{Hash: commit, Time: when}, nil
}

func (r Repository) fetchCommit(ctx context.Context, commit string) (*object.Commit, error) {
	tips, err := r.tips(ctx)
	if err != nil {
		return nil, err
	}
	tip := ""
	for name, hash := range tips {
		// Sorted choice, so the same fetch is made every time.
		if hash == commit && name != "HEAD" && (tip == "" || name < tip) {
			tip = name
		}
	}
	specs := []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}
	depth := 0
	if tip != "" {
		specs, depth = []config.RefSpec{config.RefSpec("+" + tip + ":" + tip)}, 1
	}
	auth, err := r.auth()
	if err != nil {
		return nil, err
	}
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return nil, err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{r.URL}}); err != nil {
		return nil, err
	}
	err = repo.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RefSpecs: specs, Depth: depth, Auth: auth, Tags: git.NoTags})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, fmt.Errorf("fetch %s from %s: %w", commit, r.URL, err)
	}
	c, err := repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return nil, fmt.Errorf("commit %s in %s: %w", commit, r.URL, err)
	}
	return c, nil
}

func treeEntries(tree *object.Tree) ([]entry, error) {
	walker := object.NewTreeWalker(tree, true, nil)
	defer walker.Close()
	var entries []entry
	for {
		name, te, err := walker.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		e := entry{name: name}
		switch te.Mode {
		case filemode.Dir:
			e.kind = kindDir
		case filemode.Regular, filemode.Deprecated:
			e.kind = kindFile
		case filemode.Executable:
			e.kind, e.executable = kindFile, true
		case filemode.Symlink:
			e.kind = kindSymlink
		case filemode.Submodule:
			return nil, fmt.Errorf("%s is a submodule, which source trees do not include", name)
		default:
			return nil, fmt.Errorf("%s: unexpected git file mode %s", name, te.Mode)
		}
		if e.kind != kindDir {
			blob, err := tree.TreeEntryFile(&te)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			e.size = blob.Size
			e.open = blob.Reader
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, nil
}

// auth picks the transport's credentials by the URL's scheme.
func (r Repository) auth() (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(r.URL)
	if err != nil {
		return nil, fmt.Errorf("repository URL %q: %w", r.URL, err)
	}
	c := r.Credentials
	switch ep.Protocol {
	case "http", "https":
		switch {
		case c.Token != "":
			return &githttp.TokenAuth{Token: c.Token}, nil
		case c.Username != "" || c.Password != "":
			return &githttp.BasicAuth{Username: c.Username, Password: c.Password}, nil
		}
		return nil, nil
	case "ssh":
		if len(c.SSHPrivateKey) == 0 {
			return nil, fmt.Errorf("repository %s: an SSH URL needs a private key", r.URL)
		}
		if c.SSHHostKey == "" {
			return nil, fmt.Errorf("repository %s: an SSH URL needs the server's host key pinned", r.URL)
		}
		hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.SSHHostKey))
		if err != nil {
			return nil, fmt.Errorf("repository %s: host key: %w", r.URL, err)
		}
		user := ep.User
		if user == "" {
			user = "git"
		}
		keys, err := gitssh.NewPublicKeys(user, c.SSHPrivateKey, c.SSHPassphrase)
		if err != nil {
			return nil, fmt.Errorf("repository %s: private key: %w", r.URL, err)
		}
		keys.HostKeyCallback = ssh.FixedHostKey(hostKey)
		return keys, nil
	}
	return nil, nil
}
