package remote_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/iisremedy/iisremedy/remote"
)

func Example() {
	ctx := context.Background()
	t := remote.Target{Host: "web01.corp.example", User: `CORP\admin`, Password: os.Getenv("IISREMEDY_PASSWORD")}
	s, err := remote.Dial(ctx, t) // NTLM with message encryption on http://web01...:5985/wsman
	if err != nil {
		var re *remote.Error
		if errors.As(err, &re) {
			fmt.Println(re.Class, re.Hint())
		}
		return
	}
	defer s.Close(ctx)
	r, err := s.Run(ctx, `cmd /c ver`)
	if err != nil {
		return
	}
	fmt.Printf("exit %d: %s", r.ExitCode, r.Stdout)
}
