package gotoolchain

import (
	"errors"
	"io"
	"testing"
	"time"
)

// fillWith is a cache fill that writes data and describes it as version.
func fillWith(data, version string) func(io.Writer) (Artifact, error) {
	return func(w io.Writer) (Artifact, error) {
		_, err := io.WriteString(w, data)
		return Artifact{Version: version}, err
	}
}

// noFill fails the test if the cache calls it: the key is filled already.
func noFill(t *testing.T) func(io.Writer) (Artifact, error) {
	return func(io.Writer) (Artifact, error) {
		t.Error("the cache fetched from the origin again")
		return Artifact{}, errors.New("unexpected fill")
	}
}

// getAsync runs Get in a goroutine; its result arrives on the channel.
func getAsync(c *Cache, key string, fill func(io.Writer) (Artifact, error)) <-chan getResult {
	done := make(chan getResult, 1)
	go func() {
		a, hit, err := c.Get(key, fill)
		done <- getResult{a, hit, err}
	}()
	return done
}

type getResult struct {
	a   Artifact
	hit bool
	err error
}

// Hosts served from the cache do not queue behind one another: a hit needs
// only the key's lock shared, so it returns while another reader holds it.
func TestCacheHitsShareTheLock(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	const key = "module_proxy test 1.99.0"
	filled, hit, err := c.Get(key, fillWith("archive bytes", "1.99.0"))
	if err != nil || hit {
		t.Fatalf("first Get: hit %v, %v", hit, err)
	}
	release, err := c.lock(key, false) // a reader in the middle of its lookup
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	select {
	case r := <-getAsync(c, key, noFill(t)):
		if r.err != nil || !r.hit || r.a.SHA256 != filled.SHA256 || r.a.Path != filled.Path {
			t.Errorf("hit beside another reader = %+v, want the filled artifact", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a cache hit waited for another reader's lock")
	}
}

// A host asking for a key while it is being filled waits for the fill and
// then takes its result: the origin is asked once.
func TestCacheWaitsForAFillInProgress(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	const key = "dl test 1.99.0"
	proceed, started := make(chan struct{}), make(chan struct{})
	first := getAsync(c, key, func(w io.Writer) (Artifact, error) {
		close(started)
		<-proceed
		return fillWith("archive bytes", "1.99.0")(w)
	})
	<-started
	second := getAsync(c, key, noFill(t))
	select {
	case r := <-second:
		t.Fatalf("Get returned %+v while the key was being filled", r)
	case <-time.After(300 * time.Millisecond):
	}
	close(proceed)
	f, s := <-first, <-second
	if f.err != nil || f.hit {
		t.Fatalf("filling Get: hit %v, %v", f.hit, f.err)
	}
	if s.err != nil || !s.hit || s.a.SHA256 != f.a.SHA256 {
		t.Errorf("waiting Get = %+v, want a hit on %s", s, f.a.SHA256)
	}
}

// A failed fill leaves nothing behind: the next Get fills again.
func TestCacheFailedFillIsNotRecorded(t *testing.T) {
	c := &Cache{Dir: t.TempDir()}
	const key = "dl test 1.99.0"
	if _, _, err := c.Get(key, func(io.Writer) (Artifact, error) { return Artifact{}, errors.New("bad signature") }); err == nil {
		t.Fatal("a failed fill returned no error")
	}
	a, hit, err := c.Get(key, fillWith("archive bytes", "1.99.0"))
	if err != nil || hit || a.Size != int64(len("archive bytes")) {
		t.Errorf("Get after a failed fill: %+v hit %v, %v; want a fresh fill", a, hit, err)
	}
}
