package process

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The process runtime has no images: a container runs its command on the
// host. The image service therefore reports every image as present, so the
// agent's pull logic passes through unchanged, and lists the images named by
// containers and pulls.

// PullImage has nothing to fetch; it returns the reference as the image's
// id.
func (r *Runtime) PullImage(ctx context.Context, image *runtimeapi.ImageSpec, auth *runtimeapi.AuthConfig, podSandboxConfig *runtimeapi.PodSandboxConfig) (string, error) {
	ref := image.GetImage()
	if ref == "" {
		return "", status.Error(codes.InvalidArgument, "pull image: no image reference")
	}
	r.mu.Lock()
	r.pulled[ref] = true
	r.mu.Unlock()
	return ref, nil
}

// ImageStatus reports any image as present, with no size.
func (r *Runtime) ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error) {
	if image.GetImage() == "" {
		return nil, status.Error(codes.InvalidArgument, "image status: no image reference")
	}
	return &runtimeapi.ImageStatusResponse{Image: imageFor(image)}, nil
}

func imageFor(spec *runtimeapi.ImageSpec) *runtimeapi.Image {
	return &runtimeapi.Image{Id: spec.GetImage(), RepoTags: []string{spec.GetImage()}, Spec: proto.CloneOf(spec)}
}

// ListImages lists the images named by containers and pulls, filtered by
// filter.Image.
func (r *Runtime) ListImages(ctx context.Context, filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	r.mu.Lock()
	seen := map[string]bool{}
	for ref := range r.pulled {
		seen[ref] = true
	}
	for _, c := range r.containers {
		if c.rec.Image != "" {
			seen[c.rec.Image] = true
		}
	}
	r.mu.Unlock()
	var out []*runtimeapi.Image
	for _, ref := range slices.Sorted(maps.Keys(seen)) {
		if want := filter.GetImage().GetImage(); want != "" && want != ref {
			continue
		}
		out = append(out, imageFor(&runtimeapi.ImageSpec{Image: ref}))
	}
	return out, nil
}

// RemoveImage only forgets a pull: there is nothing on disk.
func (r *Runtime) RemoveImage(ctx context.Context, image *runtimeapi.ImageSpec) error {
	r.mu.Lock()
	delete(r.pulled, image.GetImage())
	r.mu.Unlock()
	return nil
}

// ImageFsInfo reports the filesystem holding RootDir, which is where images
// and container state would live.
func (r *Runtime) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(r.root, &fs); err != nil {
		return nil, fmt.Errorf("image filesystem info: %w", err)
	}
	usage := func() *runtimeapi.FilesystemUsage {
		return &runtimeapi.FilesystemUsage{
			Timestamp:  time.Now().UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: r.root},
			UsedBytes:  &runtimeapi.UInt64Value{Value: (fs.Blocks - fs.Bfree) * uint64(fs.Bsize)},
			InodesUsed: &runtimeapi.UInt64Value{Value: fs.Files - fs.Ffree},
		}
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{usage()},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{usage()},
	}, nil
}
