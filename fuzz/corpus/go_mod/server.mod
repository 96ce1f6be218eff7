module example.com/kiln/server

go 1.22
