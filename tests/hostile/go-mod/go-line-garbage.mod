module example.com/app

go 1.2x;rm-rf
