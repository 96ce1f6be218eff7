module example.com/ÿþapp

go 1.21
