"""Reading bookings out of the spreadsheets people upload: channel exports (Airbnb, Booking.com), hand-kept
schedules and Cosmo's own template."""
